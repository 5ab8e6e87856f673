"""A private provider's own system takes cases from its queue through the API and hears of them by webhook
(issue 18, point 14); the permission matrix decides who may list and who may take."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.api.models import WebhookDelivery
from apps.api.services import api_key_create, webhook_subscription_create
from apps.audit.models import AuditEntry
from apps.routing.services import case_route, escalations_run
from apps.worklist.models import AssignmentState, CaseStatus
from tests.factories.provider import provider_queue_setup
from tests.factories.worklist import make_case


@pytest.fixture
def queued(demo):
    queue = provider_queue_setup(demo)
    case = case_route(case_id=make_case(demo, urgency="urgent", status="awaiting_reading").pk)
    assert case.assignment_state == AssignmentState.QUEUED
    return queue, case


def _client(demo, scope: str, establishment: str = "telerad") -> APIClient:
    _key, raw = api_key_create(name=f"{establishment} {scope}", establishment_id=demo.establishments[establishment].pk,
                               scope=scope)
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return c


def test_provider_system_lists_and_takes_for_one_of_its_radiologists(demo, queued):
    _queue, case = queued
    rw = _client(demo, "read_write")
    listed = rw.get("/api/v1/provider-queue/")
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()["results"]] == [str(case.public_id)]
    assert listed.json()["results"][0]["assignment"]["state"] == "queued"
    assert AuditEntry.objects.filter(action="list", object_repr="api provider queue").exists()
    # The request itself and its images are the provider's to read now.
    assert rw.get(f"/api/v1/requests/{case.public_id}/").status_code == 200
    bad = rw.post(f"/api/v1/provider-queue/{case.public_id}/claim/", {"radiologist_rpps": "10000000009"},
                  format="json")
    assert bad.status_code == 404 and "RPPS" in bad.json()["detail"]  # not one of Télérad's radiologists
    morel = demo.users["radio.morel20"]
    taken = rw.post(f"/api/v1/provider-queue/{case.public_id}/claim/", {"radiologist_rpps": morel.rpps},
                    format="json")
    assert taken.status_code == 200, taken.content
    case.refresh_from_db()
    assert case.claimed_by == morel and case.assignment_state == AssignmentState.ACKNOWLEDGED
    assert case.status == CaseStatus.IN_PROGRESS
    assert rw.get("/api/v1/provider-queue/").json()["results"] == []
    again = rw.post(f"/api/v1/provider-queue/{case.public_id}/claim/",
                    {"radiologist_rpps": demo.users["radio.thomas21"].rpps}, format="json")
    assert again.status_code == 409  # one reader
    assert rw.get(f"/api/v1/requests/{case.public_id}/").status_code == 200  # still Télérad's (its reader)


def test_matrix_read_key_lists_but_does_not_take_and_others_see_nothing(demo, queued):
    _queue, case = queued
    ro = _client(demo, "read")
    assert ro.get("/api/v1/provider-queue/").json()["count"] == 1
    assert ro.post(f"/api/v1/provider-queue/{case.public_id}/claim/", {}, format="json").status_code == 403
    site = _client(demo, "read_write", establishment="vierzon")  # the requesting site's RIS: not a provider
    assert site.get("/api/v1/provider-queue/").json()["count"] == 0
    other = _client(demo, "read_write", establishment="tours")
    assert other.get(f"/api/v1/requests/{case.public_id}/").status_code == 404
    assert other.post(f"/api/v1/provider-queue/{case.public_id}/claim/",
                      {"radiologist_rpps": demo.users["radio.durand1"].rpps}, format="json").status_code == 404


def test_provider_radiologist_session_takes_for_themselves(demo, queued, client):
    _queue, case = queued
    client.force_login(demo.users["radio.thomas21"])
    assert client.get("/api/v1/provider-queue/").json()["count"] == 1
    resp = client.post(f"/api/v1/provider-queue/{case.public_id}/claim/", {}, content_type="application/json")
    assert resp.status_code == 200, resp.content
    case.refresh_from_db()
    assert case.claimed_by == demo.users["radio.thomas21"]
    client.force_login(demo.users["urgentiste"])
    assert client.get("/api/v1/provider-queue/").status_code == 403


def test_webhooks_tell_the_provider_when_a_case_arrives_and_leaves(demo):
    from apps.api.models import ApiKey

    queue = provider_queue_setup(demo)
    key, _raw = api_key_create(name="Télérad PACS", establishment_id=demo.establishments["telerad"].pk,
                               scope="read_write")
    sub = webhook_subscription_create(api_key=ApiKey.objects.get(pk=key.pk), url="https://pacs.example.org/hooks",
                                      events=["request.queued", "request.escalated", "request.assigned"])
    case = case_route(case_id=make_case(demo, urgency="urgent", status="awaiting_reading").pk)
    queued = WebhookDelivery.objects.get(subscription=sub, case=case)
    assert queued.event_type == "request.queued"
    assert queued.payload["request"]["id"] == str(case.public_id) and "patient" in queued.payload
    import datetime as dt

    from django.utils import timezone

    escalations_run(now=timezone.now() + dt.timedelta(minutes=queue.sla_urgent_minutes + 1))
    events = list(WebhookDelivery.objects.filter(subscription=sub, case=case).order_by("pk")
                  .values_list("event_type", flat=True))
    assert events == ["request.queued", "request.escalated"]  # not the assignment to the pool's radiologist
