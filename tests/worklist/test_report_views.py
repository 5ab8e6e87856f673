from __future__ import annotations

import json
from typing import Any

import pytest
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.worklist.models import Case, CaseStatus, Origin, Report, ReportStatus
from tests.factories.worklist import make_case

pytestmark = pytest.mark.django_db


def test_autosave_then_sign_then_pdf_for_the_physician(demo: Any, login: Any) -> None:
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    radio = login("radiologue")
    base = f"/worklist/c/{case.public_id}"
    assert radio.post(f"{base}/do/claim").status_code == 302
    page = radio.get(f"{base}/")
    assert b'id="report-form"' in page.content and "Acquisition hélicoïdale de l&#x27;encéphale".encode() in page.content
    saved = radio.post(f"{base}/do/draft", data=json.dumps({
        "template": "ct_head", "indication": "Fall", "technique": "CT", "findings": "Normal.",
        "conclusion": "No haemorrhage.", "critical_finding": False}),
        content_type="application/json", HTTP_ACCEPT="application/json")
    assert saved.status_code == 200 and saved.json()["ok"] and saved.json()["saved_at"]
    assert Report.objects.get(case=case).conclusion == "No haemorrhage."
    # The physician does not see the draft.
    phys = login("urgentiste")
    assert "No haemorrhage" not in phys.get(f"{base}/live").json()["html"]
    assert phys.get(f"{base}/report.pdf").status_code == 404
    radio.post(f"{base}/do/sign", {"indication": "Fall", "technique": "CT", "findings": "Normal.",
                                   "conclusion": "No haemorrhage, no fracture."})
    report = Report.objects.get(case=case)
    assert report.status == ReportStatus.SIGNED and report.conclusion == "No haemorrhage, no fracture."
    live = phys.get(f"{base}/live", {"v": "old"}).json()
    assert live["status"] == CaseStatus.REPORTED and "No haemorrhage, no fracture." in live["html"]
    pdf = phys.get(f"{base}/report.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and b"%%EOF" in pdf.content[-1024:]
    assert AuditEntry.objects.filter(action="read", object_id=str(case.pk), details__view="report_pdf").exists()
    # Signing again through the form is refused with a message, the report unchanged.
    resp = radio.post(f"{base}/do/draft", data=json.dumps({"conclusion": "changed"}),
                      content_type="application/json", HTTP_ACCEPT="application/json")
    assert resp.status_code == 409
    assert Report.objects.get(case=case).conclusion == "No haemorrhage, no fracture."


def test_critical_finding_sign_is_refused_until_the_call_is_logged(demo: Any, login: Any) -> None:
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    radio = login("radiologue")
    base = f"/worklist/c/{case.public_id}"
    radio.post(f"{base}/do/claim")
    fields = {"indication": "x", "technique": "y", "findings": "Bleed", "conclusion": "Subdural haematoma",
              "critical_finding": "on"}
    resp = radio.post(f"{base}/do/sign", fields, HTTP_ACCEPT="application/json")
    assert resp.status_code == 400 and "log your call" in resp.json()["error"]
    radio.post(f"{base}/do/critical_call", {"physician_name": "Dr Fontaine", "acknowledged": "on",
                                            "called_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M")})
    assert radio.post(f"{base}/do/sign", fields, HTTP_ACCEPT="application/json").json()["ok"]
    assert Report.objects.get(case=case).critical_finding


def test_claim_conflict_is_explained_in_the_page(demo: Any, login: Any) -> None:
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    Case.objects.filter(pk=case.pk).update(assigned_line=None)
    first, second = login("radiologue"), login("radio.durand1")
    first.post(f"/worklist/c/{case.public_id}/do/claim")
    # durand1 sees the case because it was handed to him; the claim still belongs to the first reader.
    Case.objects.filter(pk=case.pk).update(assigned_to=demo.users["radio.durand1"])
    resp = second.post(f"/worklist/c/{case.public_id}/do/claim", HTTP_ACCEPT="application/json")
    assert resp.status_code == 409 and resp.json()["error"] == "Already claimed by Dr Claire Martin."


def test_site_matches_an_unmatched_study_by_hand(demo: Any, login: Any) -> None:
    from apps.studies.models import Study

    request = make_case(demo, status="accepted", local_patient_id="IPP-A")
    lone = Study.objects.create(study_uid="1.2.3.4", site=demo.establishments["vierzon"], modality="CT",
                                patient_name="DUPONT^JEAN", patient_id="OTHER-ID", num_series=1, num_instances=3,
                                status="complete", completed_at=timezone.now(), last_received_at=timezone.now())
    placeholder = Case.objects.create(site=lone.site, origin=Origin.DICOM, modality_id="CT",
                                      requested_at=timezone.now(), patient_birth_name="DUPONT",
                                      patient_first_names="JEAN", patient_sex="M",
                                      patient_birth_date="1950-01-02", clinical_question="?", exam="CT",
                                      status=CaseStatus.AWAITING_READING)
    Study.objects.filter(pk=lone.pk).update(case=placeholder)
    client = login("manip")
    page = client.get("/worklist/site/matching/")
    assert page.status_code == 200 and [s.pk for s in page.context["studies"]] == [lone.pk]
    assert [c.pk for c in page.context["requests"]] == [request.pk]
    # Another site cannot match it.
    login("urgentiste.blois").post("/worklist/site/matching/", {"study": lone.pk, "case": request.pk})
    # Missing, empty, non-numeric or out-of-range identifiers find nothing: a message, not a 500.
    for bad in ({}, {"study": "", "case": ""}, {"study": "x", "case": request.pk},
                {"study": "9" * 25, "case": request.pk}, {"study": lone.pk, "case": "-1"}):
        answer = client.post("/worklist/site/matching/", bad)
        assert answer.status_code == 302, bad
    assert Study.objects.get(pk=lone.pk).case_id == placeholder.pk
    assert Study.objects.get(pk=lone.pk).case_id == placeholder.pk
    client.post("/worklist/site/matching/", {"study": lone.pk, "case": request.pk})
    lone.refresh_from_db()
    request.refresh_from_db()
    placeholder.refresh_from_db()
    assert lone.case_id == request.pk and request.status == CaseStatus.AWAITING_READING
    assert request.images_complete_at is not None and placeholder.status == CaseStatus.CANCELLED
    assert request.events.filter(kind="images_complete", data__manual=True).exists()
