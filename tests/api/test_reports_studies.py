from __future__ import annotations

from typing import Any

from django.utils import timezone

from apps.worklist.models import Case
from tests.api.conftest import report_sign, request_create


def study_create(world: Any, case: Any | None, *, site: Any = None) -> Any:
    from apps.studies.models import Series, Study

    now = timezone.now()
    study = Study.objects.create(study_uid=f"1.2.826.0.1.3680043.9.{Study.objects.count() + 7}",
                                 site=site or world.site_a, case=case, status="routed", modality="CT",
                                 patient_name="MARTIN^JEANNE", patient_id="IPP-1234", accession_number="ACC-0001",
                                 description="CT cerebral", num_series=2, num_instances=5,
                                 first_received_at=now, completed_at=now)
    Series.objects.create(study=study, series_uid=study.study_uid + ".1", number=1, modality="CT",
                          description="Axial", num_instances=3)
    Series.objects.create(study=study, series_uid=study.study_uid + ".2", number=2, modality="CT",
                          description="Coronal", num_instances=2)
    return study


def test_report_json_pdf_and_addenda(world: Any) -> None:
    created = request_create(world)
    c = world.client("a_ro")
    assert c.get(f"/api/v1/requests/{created['id']}/report/").status_code == 404
    case = Case.objects.get(public_id=created["id"])
    report_sign(case, world.users["radiologist"], addendum="Contrôle à 24 h conseillé.")
    body = c.get(f"/api/v1/requests/{created['id']}/report/").json()
    assert body["status"] == "signed" and body["conclusion"] == "Pas de lésion hémorragique."
    assert body["signed_by"] == "Dr Rita Radio"
    assert [a["text"] for a in body["addenda"]] == ["Contrôle à 24 h conseillé."]
    pdf = c.get(f"/api/v1/requests/{created['id']}/report/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    addenda = c.get(f"/api/v1/requests/{created['id']}/report/addenda/").json()
    assert len(addenda) == 1
    assert world.client("b_rw").get(f"/api/v1/requests/{created['id']}/report/pdf/").status_code == 404


def test_draft_report_is_not_exposed(world: Any) -> None:
    from apps.worklist.models import Report

    created = request_create(world)
    case = Case.objects.get(public_id=created["id"])
    Report.objects.create(case=case, author=world.users["radiologist"], findings="brouillon")
    assert world.client("a_ro").get(f"/api/v1/requests/{created['id']}/report/").status_code == 404


def test_studies_status_counts_and_matching(world: Any) -> None:
    created = request_create(world)
    case = Case.objects.get(public_id=created["id"])
    matched = study_create(world, case)
    unmatched = study_create(world, None)
    study_create(world, None, site=world.site_b)
    c = world.client("a_ro")
    listing = c.get("/api/v1/studies/").json()
    assert listing["count"] == 2
    body = c.get(f"/api/v1/studies/{matched.pk}/").json()
    assert body["num_series"] == 2 and body["num_instances"] == 5
    assert body["matched"] is True and body["request"] == created["id"]
    assert [s["num_instances"] for s in body["series"]] == [3, 2]
    assert c.get("/api/v1/studies/?matched=false").json()["results"][0]["id"] == unmatched.pk
    assert c.get("/api/v1/studies/?matched=true").json()["count"] == 1
    assert world.client("b_rw").get(f"/api/v1/studies/{matched.pk}/").status_code == 404


def test_tele_act_record_exports(world: Any) -> None:
    created = request_create(world)
    case = Case.objects.get(public_id=created["id"])
    report_sign(case, world.users["radiologist"])
    c = world.client("a_ro")
    as_json = c.get(f"/api/v1/requests/{created['id']}/tele-act/")
    assert as_json.status_code == 200 and as_json["Content-Type"].startswith("application/json")
    assert created["id"] in as_json.content.decode()
    pdf = c.get(f"/api/v1/requests/{created['id']}/tele-act/?export=pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    fhir = c.get(f"/api/v1/requests/{created['id']}/tele-act/?export=fhir")
    assert fhir.status_code == 200 and fhir["Content-Type"].startswith("application/fhir+json")
    assert c.get(f"/api/v1/requests/{created['id']}/tele-act/?export=xml").status_code == 400
    assert world.client("b_rw").get(f"/api/v1/requests/{created['id']}/tele-act/").status_code == 404
