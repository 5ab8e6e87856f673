from __future__ import annotations

from typing import Any

from apps.worklist.models import Case, CaseEvent, CaseStatus
from tests.api.conftest import REQUEST_BODY, request_create


def test_create_request(world: Any) -> None:
    body = request_create(world)
    assert body["status"] == "awaiting_validation"
    assert body["site"] == world.site_a.pk
    assert body["origin"] == "api"
    assert body["patient"]["birth_name"] == "MARTIN"
    case = Case.objects.get(public_id=body["id"])
    assert case.origin == "api" and case.modality_id == "CT" and case.urgency == "vital"


def test_idempotency_key_returns_the_same_request(world: Any) -> None:
    c = world.client("a_rw")
    first = c.post("/api/v1/requests/", REQUEST_BODY, format="json", HTTP_IDEMPOTENCY_KEY="ris-order-42")
    again = c.post("/api/v1/requests/", REQUEST_BODY, format="json", HTTP_IDEMPOTENCY_KEY="ris-order-42")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert Case.objects.filter(idempotency_key="ris-order-42").count() == 1
    # The same key from another establishment is another request.
    other = world.client("b_rw").post("/api/v1/requests/", REQUEST_BODY, format="json",
                                      HTTP_IDEMPOTENCY_KEY="ris-order-42")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


def test_bad_input_is_400_with_field_messages(world: Any) -> None:
    c = world.client("a_rw")
    resp = c.post("/api/v1/requests/", {**REQUEST_BODY, "patient_sex": "X", "patient_birth_date": "yesterday",
                                        "modality": "PET"}, format="json")
    assert resp.status_code == 400
    assert resp["Content-Type"] == "application/problem+json"
    errors = resp.json()["errors"]
    assert set(errors) >= {"patient_sex", "patient_birth_date", "modality"}
    assert "Unknown modality" in errors["modality"][0]
    missing = c.post("/api/v1/requests/", {}, format="json")
    assert missing.status_code == 400 and "clinical_question" in missing.json()["errors"]
    not_json = c.post("/api/v1/requests/", "{not json", content_type="application/json")
    assert not_json.status_code == 400
    bad_ins = c.post("/api/v1/requests/", {**REQUEST_BODY, "patient_ins": "123"}, format="json")
    assert bad_ins.status_code == 400 and "patient_ins" in bad_ins.json()["errors"]
    long_key = c.post("/api/v1/requests/", REQUEST_BODY, format="json", HTTP_IDEMPOTENCY_KEY="k" * 101)
    assert long_key.status_code == 400


def test_opposition_to_telemedicine_is_refused(world: Any) -> None:
    # The body matches the schema: the refusal is the domain's, a 422 (a 400 says the request is malformed).
    resp = world.client("a_rw").post("/api/v1/requests/", {**REQUEST_BODY, "opposes_telemedicine": True},
                                     format="json")
    assert resp.status_code == 422
    assert "opposes tele-medicine" in resp.json()["detail"]


def test_ultrasound_is_redirected(world: Any) -> None:
    body = request_create(world, modality="US", exam="Echographie abdominale")
    assert body["status"] == "redirected"


def test_list_filters_and_pagination(world: Any) -> None:
    for i in range(3):
        request_create(world, urgency="urgent", accession_number=f"ACC-{i}")
    request_create(world, modality="MR", exam="IRM", urgency="deferred")
    request_create(world, key="b_rw")
    c = world.client("a_ro")
    page = c.get("/api/v1/requests/?limit=2").json()
    assert page["count"] == 4 and len(page["results"]) == 2 and page["next"]
    assert c.get("/api/v1/requests/?modality=MR").json()["count"] == 1
    assert c.get("/api/v1/requests/?urgency=urgent").json()["count"] == 3
    assert c.get("/api/v1/requests/?accession_number=ACC-1").json()["count"] == 1
    assert c.get("/api/v1/requests/?status=awaiting_validation&status=cancelled").json()["count"] == 4
    bad = c.get("/api/v1/requests/?urgency=whenever")
    assert bad.status_code == 400 and "urgency" in bad.json()["errors"]
    assert c.get("/api/v1/requests/?requested_after=not-a-date").status_code == 400


def test_other_establishment_gets_404(world: Any) -> None:
    mine = request_create(world)
    other = world.client("b_rw")
    assert other.get(f"/api/v1/requests/{mine['id']}/").status_code == 404
    assert other.post(f"/api/v1/requests/{mine['id']}/cancel/", {}, format="json").status_code == 404
    assert other.get(f"/api/v1/requests/{mine['id']}/events/").status_code == 404
    assert other.get("/api/v1/requests/").json()["count"] == 0
    assert other.get("/api/v1/requests/not-a-uuid/").status_code == 404


def test_cancel_open_request(world: Any) -> None:
    created = request_create(world)
    c = world.client("a_rw")
    resp = c.post(f"/api/v1/requests/{created['id']}/cancel/", {"reason": "Patient transféré"}, format="json")
    assert resp.status_code == 200
    assert resp.json()["status"] == "cancelled" and resp.json()["cancelled_at"]
    case = Case.objects.get(public_id=created["id"])
    assert case.status == CaseStatus.CANCELLED
    assert CaseEvent.objects.filter(case=case, kind="cancelled").count() == 1
    again = c.post(f"/api/v1/requests/{created['id']}/cancel/", {}, format="json")
    assert again.status_code == 409
    assert again.json()["title"] == "Not cancellable"
    events = c.get(f"/api/v1/requests/{created['id']}/events/").json()
    assert [e["kind"] for e in events] == ["requested", "cancelled"]


def test_worklist_and_assignment(world: Any) -> None:
    created = request_create(world)
    deferred = request_create(world, urgency="deferred")
    case = Case.objects.get(public_id=created["id"])
    radiologist = world.users["radiologist"]
    Case.objects.filter(pk=case.pk).update(assigned_to=radiologist, assignment_state="offered")
    mine = world.client("a_ro").get("/api/v1/worklist/").json()
    assert [r["id"] for r in mine["results"]] == [created["id"], deferred["id"]]  # vital first
    c = world.client()
    c.force_login(radiologist)
    queue = c.get("/api/v1/worklist/").json()
    assert [r["id"] for r in queue["results"]] == [created["id"]]
    assignment = world.client("a_ro").get(f"/api/v1/requests/{created['id']}/assignment/").json()
    assert assignment["state"] == "offered" and assignment["radiologist"] == "Dr Rita Radio"


def test_establishments_directory(world: Any) -> None:
    c = world.client("a_ro")
    names = [e["name"] for e in c.get("/api/v1/establishments/").json()["results"]]
    assert names == ["CH Alpha", "CH Beta"]
    assert c.get(f"/api/v1/establishments/{world.site_b.pk}/").json()["finess"] == world.site_b.finess


def test_idempotency_key_reused_for_another_request_is_422(world: Any) -> None:
    c = world.client("a_rw")
    assert c.post("/api/v1/requests/", REQUEST_BODY, format="json", HTTP_IDEMPOTENCY_KEY="ord-7").status_code == 201
    other = c.post("/api/v1/requests/", {**REQUEST_BODY, "patient_birth_name": "DURAND"}, format="json",
                   HTTP_IDEMPOTENCY_KEY="ord-7")
    assert other.status_code == 422
    assert "patient_birth_name" in other.json()["errors"]["Idempotency-Key"][0]
    assert Case.objects.filter(idempotency_key="ord-7").count() == 1
