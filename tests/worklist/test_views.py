from __future__ import annotations

from typing import Any

import pytest

from apps.audit.models import AuditEntry
from apps.worklist.models import Case, CaseStatus
from tests.factories.worklist import make_case

pytestmark = pytest.mark.django_db


def _form(**overrides: Any) -> dict[str, Any]:
    data = {
        "idempotency_key": "k-1", "patient_birth_name": "MARTIN", "patient_first_names": "Alice", "patient_sex": "F",
        "patient_birth_date": "1980-05-02", "urgency": "urgent", "modality_code": "CT", "exam": "CT chest angiography",
        "clinical_question": "Pulmonary embolism?", "pregnancy": "no", "patient_informed": "on",
        "local_patient_id": "IPP9",
    }
    data.update(overrides)
    return data


def test_physician_submits_a_request_and_a_double_submit_creates_one(demo: Any, login: Any) -> None:
    client = login("urgentiste")
    page = client.get("/worklist/request/new/")
    assert page.status_code == 200 and b"idempotency_key" in page.content
    first = client.post("/worklist/request/new/", _form())
    second = client.post("/worklist/request/new/", _form())
    assert first.status_code == 302 and first["Location"] == second["Location"]
    assert Case.objects.filter(site=demo.establishments["vierzon"]).count() == 1
    case = Case.objects.get()
    assert case.requested_by == demo.users["urgentiste"] and case.status == CaseStatus.AWAITING_VALIDATION
    status = client.get(first["Location"])
    assert status.status_code == 200 and b"MARTIN" in status.content


def test_opposition_to_telemedicine_blocks_with_a_clear_message(demo: Any, login: Any) -> None:
    client = login("urgentiste")
    resp = client.post("/worklist/request/new/", _form(opposes_telemedicine="on"))
    assert resp.status_code == 200
    assert "opposes tele-medicine" in resp.content.decode()
    assert not Case.objects.exists()
    # Bad input is reported on the fields.
    resp = login("urgentiste").post("/worklist/request/new/", _form(patient_birth_date="31/02/2020", patient_informed=""))
    assert resp.status_code == 200
    assert resp.context["form"].errors.keys() >= {"patient_birth_date", "patient_informed"}
    assert not Case.objects.exists()


def test_other_establishment_gets_404_and_reads_are_audited(demo: Any, login: Any) -> None:
    case = make_case(demo)
    own = login("urgentiste")
    before = AuditEntry.objects.filter(action="read", object_id=str(case.pk), patient_data=True).count()
    assert own.get(f"/worklist/c/{case.public_id}/").status_code == 200
    assert AuditEntry.objects.filter(action="read", object_id=str(case.pk), patient_data=True).count() == before + 1
    other = login("urgentiste.blois")
    for url in (f"/worklist/c/{case.public_id}/", f"/worklist/c/{case.public_id}/live",
                f"/worklist/c/{case.public_id}/viewer/", f"/worklist/c/{case.public_id}/report.pdf"):
        assert other.get(url).status_code == 404, url
    assert other.post(f"/worklist/c/{case.public_id}/do/info", {"answer": "x"}).status_code == 404
    # A radiologist with no link to the case does not see it either.
    assert login("radio.andre10").get(f"/worklist/c/{case.public_id}/").status_code == 404
    blois_list = login("urgentiste.blois").get("/worklist/site/")
    assert b"DUPONT" not in blois_list.content


def test_site_list_shows_tonights_requests_with_state_and_polls(demo: Any, login: Any) -> None:
    make_case(demo)
    client = login("urgentiste")
    page = client.get("/worklist/site/")
    assert page.status_code == 200 and b"DUPONT" in page.content
    version = page.context["version"]
    same = client.get("/worklist/site/rows", {"v": version}, HTTP_ACCEPT="application/json").json()
    assert same == {"changed": False, "version": version}
    changed = client.get("/worklist/site/rows", {"v": "old"}).json()
    assert changed["changed"] and "DUPONT" in changed["html"]
    # Landing pages by role.
    assert login("radiologue").get("/")["Location"] == "/worklist/"
    assert client.get("/")["Location"] == "/worklist/site/"
    assert login("manip").get("/")["Location"] == "/worklist/site/"


def test_radiologist_worklist_orders_by_urgency_then_waiting_and_filters(demo: Any, login: Any) -> None:
    deferred = make_case(demo, assign_to="radiologue", status="awaiting_reading", urgency="deferred", exam="XR wrist",
                         modality_code="XR")
    vital = make_case(demo, assign_to="radiologue", status="awaiting_reading", urgency="vital")
    urgent = make_case(demo, assign_to="radiologue", status="awaiting_reading", urgency="urgent",
                       site="blois", physician="urgentiste.blois")
    make_case(demo, assign_to="radio.durand1", status="awaiting_reading")  # someone else's
    client = login("radiologue")
    page = client.get("/worklist/")
    assert page.status_code == 200
    html = page.context["rows_html"]
    positions = [html.index(str(c.public_id)) for c in (vital, urgent, deferred)]
    assert positions == sorted(positions)
    assert html.count("data-case=") == 3
    only_xr = client.get("/worklist/", {"modality": "XR"}).context["rows_html"]
    assert str(deferred.public_id) in only_xr and str(vital.public_id) not in only_xr
    only_blois = client.get("/worklist/", {"site": demo.establishments["blois"].pk}).context["rows_html"]
    assert only_blois.count("data-case=") == 1 and str(urgent.public_id) in only_blois
    assert AuditEntry.objects.filter(action="list", actor_username="radiologue", patient_data=True).exists()


def test_validation_flow_with_information_requested(demo: Any, login: Any) -> None:
    case = make_case(demo, assign_to="radiologue")
    radio = login("radiologue")
    resp = radio.post(f"/worklist/c/{case.public_id}/do/validate", {"decision": "ask_info", "reason": "Creatinine?"})
    assert resp.status_code == 302
    case.refresh_from_db()
    assert case.status == CaseStatus.INFO_REQUESTED
    phys = login("urgentiste")
    live = phys.get(f"/worklist/c/{case.public_id}/live").json()
    assert "Creatinine?" in live["html"]
    phys.post(f"/worklist/c/{case.public_id}/do/info", {"answer": "eGFR 75"})
    case.refresh_from_db()
    assert case.status == CaseStatus.AWAITING_VALIDATION and "eGFR 75" in case.clinical_context
    # Accepting without a protocol is refused with a message.
    resp = radio.post(f"/worklist/c/{case.public_id}/do/validate", {"decision": "accept"},
                      HTTP_ACCEPT="application/json")
    assert resp.status_code == 400 and "protocol" in resp.json()["error"]
    radio.post(f"/worklist/c/{case.public_id}/do/validate", {"decision": "accept", "protocol": "Non-contrast CT"})
    case.refresh_from_db()
    assert case.status == CaseStatus.ACCEPTED and case.validated_by == demo.users["radiologue"]
    assert "Non-contrast CT" in phys.get(f"/worklist/c/{case.public_id}/live").json()["html"]
    kinds = list(case.events.values_list("kind", flat=True))
    assert kinds == ["requested", "info_requested", "info_provided", "validated"]


def test_physician_cannot_validate_or_claim(demo: Any, login: Any) -> None:
    case = make_case(demo, status="awaiting_reading")
    phys = login("urgentiste")
    r = phys.post(f"/worklist/c/{case.public_id}/do/claim", HTTP_ACCEPT="application/json")
    assert r.status_code == 403
    r = phys.post(f"/worklist/c/{case.public_id}/do/validate", {"decision": "refuse", "reason": "x"},
                  HTTP_ACCEPT="application/json")
    assert r.status_code == 403


def test_ultrasound_request_is_redirected_with_the_referral(demo: Any, login: Any) -> None:
    client = login("urgentiste")
    resp = client.post("/worklist/request/new/", _form(modality_code="US", exam="Abdominal ultrasound"))
    case = Case.objects.get()
    assert case.status == CaseStatus.REDIRECTED
    assert "Ultrasound" in client.get(resp["Location"]).content.decode()



def test_acknowledge_and_decline_go_through_the_routing_engine(demo: Any, login: Any) -> None:
    from apps.routing.services import case_route

    case = make_case(demo)
    case_route(case_id=case.pk)  # what the worker does on commit
    case.refresh_from_db()
    reader = case.assigned_to
    assert reader is not None and case.assignment_state == "offered"
    client = login(reader.username)
    page = client.get(f"/worklist/c/{case.public_id}/")
    assert b'id="ack-button"' in page.content
    resp = client.post(f"/worklist/c/{case.public_id}/do/decline", {"reason": " "}, HTTP_ACCEPT="application/json")
    assert resp.status_code == 400
    client.post(f"/worklist/c/{case.public_id}/do/acknowledge")
    case.refresh_from_db()
    assert case.assignment_state == "acknowledged"
    client.post(f"/worklist/c/{case.public_id}/do/hand_back", {"reason": "Called to the resuscitation room"})
    case.refresh_from_db()
    assert case.assigned_to != reader
    assert case.events.filter(kind="handed_back").exists()


def test_expert_sees_the_request_in_the_worklist_and_answers(demo: Any, login: Any) -> None:
    from apps.rosters.models import LineKind, OnCallLine
    from apps.worklist.services import case_claim, expert_request_create

    line = OnCallLine.objects.get(kind=LineKind.REFERRAL)
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    case_claim(case_id=case.pk, user=demo.users["radiologue"])
    req = expert_request_create(case_id=case.pk, user=demo.users["radiologue"], line_id=line.pk,
                                question="Dissection of the vertebral artery?")
    expert = req.expert or demo.users["radio.roux23"]
    if req.expert is None:
        req.expert = expert
        req.save(update_fields=["expert"])
    client = login(expert.username)
    page = client.get("/worklist/")
    assert "Dissection of the vertebral artery?" in page.context["rows_html"]
    detail = client.get(f"/worklist/c/{case.public_id}/")
    assert detail.status_code == 200 and b'name="opinion"' in detail.content
    client.post(f"/worklist/c/{case.public_id}/do/expert_opinion", {"expert_request": req.pk,
                                                                      "opinion": "No dissection."})
    live = login("urgentiste").get(f"/worklist/c/{case.public_id}/live").json()
    assert "No dissection." in live["html"]
