"""The tele-act record of a case built through the worklist services: completeness, exports, consent."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.models import AuditEntry
from apps.traceability.models import TeleActRecord
from apps.traceability.services import (
    incident_record,
    teleact_record_export,
    teleact_record_freeze,
    teleact_records_freeze_pending,
)
from apps.worklist import services as wl
from apps.worklist.models import Case


def _signed_case(demo, *, opposes_data_sharing: bool = False) -> Case:
    from apps.rosters.models import OnCallLine

    physician, manip, reader = (User.objects.get(username=u) for u in ("urgentiste", "manip", "radiologue"))
    expert = User.objects.get(username="radio.roux23")
    site = demo.establishments["vierzon"]
    data = wl.CaseInput(patient_birth_name="LEMAIRE", patient_first_names="Ondine", patient_sex="F",
                        patient_birth_date=dt.date(1955, 8, 14), clinical_question="Hémorragie ?",
                        modality_code="CT", exam="Scanner cérébral", urgency="vital", patient_ins="",
                        patient_informed=True, opposes_data_sharing=opposes_data_sharing)
    case, created = wl.case_create(site_id=site.pk, data=data, requested_by_id=physician.pk)
    assert created
    wl.case_validate(case_id=case.pk, user=reader, decision="accept", protocol="Sans injection")
    now = timezone.now()
    # Acquisition and assignment belong to the gateway and the routing engine: set their stamps directly.
    Case.objects.filter(pk=case.pk).update(radiographer=manip, images_complete_at=now, status="awaiting_reading",
                                           assigned_to=reader, assigned_at=now, acknowledged_at=now,
                                           assignment_state="acknowledged")
    wl.case_claim(case_id=case.pk, user=reader)
    line, _ = OnCallLine.objects.get_or_create(region=demo.region, kind="referral", name="Neuro (test)")
    req = wl.expert_request_create(case_id=case.pk, user=reader, line_id=line.pk, question="Thrombose ?")
    wl.expert_opinion_give(expert_request_id=req.pk, user=expert, opinion="Pas de thrombose veineuse.")
    wl.report_draft_save(case_id=case.pk, user=reader, critical_finding=True,
                         fields={"indication": "Céphalées", "findings": "Hématome sous-dural droit 8 mm",
                                 "conclusion": "HSD droit"})
    wl.critical_call_log(case_id=case.pk, user=reader, physician_name="Dr Urgentiste", acknowledged=True)
    incident_record(kind="image_quality", summary="Artefacts de mouvement", source="manual",
                    establishment_id=site.pk, case_id=case.pk)
    wl.report_sign(case_id=case.pk, user=reader)
    wl.addendum_add(case_id=case.pk, user=reader, text="Contrôle à 6 h conseillé.")
    case.refresh_from_db()
    return case


def test_record_frozen_at_signature_is_complete(demo):
    case = _signed_case(demo)
    from apps.traceability.tasks import freeze_teleact_records

    assert freeze_teleact_records() == 1 and teleact_records_freeze_pending() == 0  # the beat task, re-runnable
    record = TeleActRecord.objects.get(case=case)
    doc = record.snapshot
    acts = [a["act"] for a in doc["acts"]]
    for act in ("request", "validation", "images_complete", "assignment", "acknowledgement", "reading",
                "expert_request", "expert_opinion", "critical_finding_call", "report_signed", "addendum"):
        assert act in acts, act
    assert acts.index("request") < acts.index("validation") < acts.index("report_signed") < acts.index("addendum")
    roles = {(p["role"], p["name"]) for p in doc["professionals"]}
    reader = User.objects.get(username="radiologue")
    assert ("requesting_physician", User.objects.get(username="urgentiste").display_name) in roles
    assert ("radiographer", User.objects.get(username="manip").display_name) in roles
    assert ("report_signatory", reader.display_name) in roles
    assert ("expert", User.objects.get(username="radio.roux23").display_name) in roles
    signer = next(p for p in doc["professionals"] if p["role"] == "report_signatory")
    assert signer["rpps"] == reader.rpps and len(signer["rpps"]) == 11
    assert all(a["at"] for a in doc["acts"])
    assert doc["report"]["conclusion"] == "HSD droit" and doc["report"]["content_sha256"]
    assert [i["kind"] for i in doc["incidents"]] == ["image_quality"]
    assert doc["patient"]["birth_name"] == "LEMAIRE"  # the patient's own record keeps the identity
    assert teleact_record_freeze(case_id=case.pk).pk == record.pk  # idempotent
    assert AuditEntry.objects.filter(object_type="traceability.teleactrecord", action="create").count() == 1


@pytest.fixture
def plain_pdf(monkeypatch):
    """Uncompressed PDF streams so that tests can search the text."""
    from reportlab import rl_config

    monkeypatch.setattr(rl_config, "pageCompression", 0)


def test_exports_json_fhir_pdf(demo, plain_pdf):
    case = _signed_case(demo)
    teleact_record_freeze(case_id=case.pk)
    doc = json.loads(teleact_record_export(case=case, fmt="json").content)
    assert doc["patient"]["birth_name"] == "LEMAIRE" and doc["frozen_at_signature"]["sha256"]
    assert doc["consent"]["opposes_data_sharing"] is False
    bundle = json.loads(teleact_record_export(case=case, fmt="fhir").content)
    assert bundle["resourceType"] == "Bundle"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "DiagnosticReport" and kinds.count("Provenance") == len(doc["acts"]) + len(doc["incidents"])
    dr = bundle["entry"][0]["resource"]
    assert dr["status"] == "final" and dr["conclusion"] == "HSD droit"
    assert dr["resultsInterpreter"][0]["identifier"]["value"] == User.objects.get(username="radiologue").rpps
    pdf = teleact_record_export(case=case, fmt="pdf")
    assert pdf.content.startswith(b"%PDF") and pdf.filename.endswith(".pdf")
    assert b"LEMAIRE" in pdf.content and b"HSD droit" in pdf.content
    exports = AuditEntry.objects.filter(action="export", object_type="worklist.case", object_id=str(case.pk))
    assert sorted(e.details["format"] for e in exports) == ["fhir", "json", "pdf"]
    assert all(e.patient_data for e in exports)


def test_opposition_to_data_sharing_withholds_identity_from_every_export(demo, plain_pdf):
    case = _signed_case(demo, opposes_data_sharing=True)
    for fmt in ("json", "fhir"):
        export = teleact_record_export(case=case, fmt=fmt)
        text = export.content.decode()
        assert export.identity_withheld
        assert "LEMAIRE" not in text and "Ondine" not in text and "1955-08-14" not in text
    doc = json.loads(teleact_record_export(case=case, fmt="json").content)
    assert doc["patient"] == {"withheld": True, "statement": doc["consent"]["statement"]}
    assert "opposes the sharing" in doc["consent"]["statement"]
    pdf = teleact_record_export(case=case, fmt="pdf").content
    assert b"LEMAIRE" not in pdf and b"Patient identity withheld" in pdf
    entry = AuditEntry.objects.filter(action="export").latest("id")
    assert entry.details["identity_withheld"] is True


@pytest.mark.parametrize("username,allowed", [("coordinateur", True), ("urgentiste", True), ("radiologue", True),
                                              ("urgentiste.blois", False)])
def test_record_page_and_downloads_are_access_controlled(client, demo, username, allowed):
    case = _signed_case(demo)
    client.force_login(User.objects.get(username=username))
    r = client.get(f"/traceability/cases/{case.public_id}/record/")
    assert r.status_code == (200 if allowed else 404)
    if allowed:
        assert "HSD droit" in r.content.decode()
        d = client.get(f"/traceability/cases/{case.public_id}/record.pdf")
        assert d.status_code == 200 and d["Content-Type"] == "application/pdf"
        read = AuditEntry.objects.filter(action="read", object_type="worklist.case", object_id=str(case.pk)).latest("id")
        assert read.actor_username == username and read.channel == "web" and read.patient_data


def test_freeze_ignores_unsigned_cases(demo):
    physician = User.objects.get(username="urgentiste")
    data = wl.CaseInput(patient_birth_name="X", patient_first_names="Y", patient_sex="M",
                        patient_birth_date=dt.date(1980, 1, 1), clinical_question="?", modality_code="CT", exam="TDM")
    case, _ = wl.case_create(site_id=demo.establishments["vierzon"].pk, data=data, requested_by_id=physician.pk)
    assert teleact_record_freeze(case_id=case.pk) is None
