"""Webhook subscriptions, the outbox and delivery (service driven directly; the worker-driven run is in
tests/integration/test_webhooks_worker.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from apps.api.models import WebhookDelivery
from apps.api.services import webhook_deliveries_drive, webhook_due_queues, webhook_signature_verify
from apps.traceability.models import TechnicalIncident
from apps.worklist.models import Case
from tests.api.conftest import report_sign, request_create
from tests.api.receiver import Receiver
from tests.support.processes import free_port

ALL_EVENTS = ["request.created", "request.cancelled", "report.signed", "report.addendum"]


def subscribe(world: Any, url: str, events: list[str] = ALL_EVENTS, key: str = "a_rw") -> dict[str, Any]:
    resp = world.client(key).post("/api/v1/webhooks/", {"url": url, "events": events}, format="json")
    assert resp.status_code == 201, resp.content
    return resp.json()


def test_subscription_api_and_boundaries(world: Any) -> None:
    sub = subscribe(world, "https://ris.example.org/pds")
    assert sub["secret"].startswith("whsec_")
    c = world.client("a_rw")
    listed = c.get("/api/v1/webhooks/").json()["results"]
    assert [s["id"] for s in listed] == [sub["id"]] and "secret" not in listed[0]
    assert world.client("b_rw").get(f"/api/v1/webhooks/{sub['id']}/").status_code == 404
    assert world.client("a_ro").post("/api/v1/webhooks/", {"url": "https://x.example/", "events": ALL_EVENTS},
                                     format="json").status_code == 403
    bad = c.post("/api/v1/webhooks/", {"url": "not a url", "events": ["nope"]}, format="json")
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"url", "events"}
    assert c.delete(f"/api/v1/webhooks/{sub['id']}/").status_code == 204
    assert c.get("/api/v1/webhooks/").json()["count"] == 0


def test_events_queue_only_for_the_subscribed_establishment(world: Any) -> None:
    subscribe(world, "https://ris.example.org/pds", events=["request.created"])
    subscribe(world, "https://beta.example.org/pds", events=["report.signed"], key="b_rw")
    mine = request_create(world)
    request_create(world, key="b_rw")
    deliveries = list(WebhookDelivery.objects.all())
    assert [(d.event_type, str(d.case.public_id)) for d in deliveries] == [("request.created", mine["id"])]
    payload = deliveries[0].payload
    assert payload["patient"]["birth_name"] == "MARTIN" and payload["patient_identity_withheld"] is False


def test_opposition_to_data_sharing_withholds_identity(world: Any) -> None:
    subscribe(world, "https://ris.example.org/pds", events=["request.created"])
    request_create(world, opposes_data_sharing=True)
    payload = WebhookDelivery.objects.get().payload
    assert "patient" not in payload and payload["patient_identity_withheld"] is True
    assert "opposes" in payload["patient_identity_withheld_reason"]
    assert "MARTIN" not in str(payload)


def test_signature_verification() -> None:
    from apps.api.services import webhook_sign

    now = int(time.time())
    sig = webhook_sign(secret="s3cret", timestamp=now, body=b'{"a":1}')
    assert webhook_signature_verify(secret="s3cret", timestamp=str(now), body=b'{"a":1}', signature=sig)
    assert not webhook_signature_verify(secret="s3cret", timestamp=str(now), body=b'{"a":2}', signature=sig)
    assert not webhook_signature_verify(secret="other", timestamp=str(now), body=b'{"a":1}', signature=sig)
    assert not webhook_signature_verify(secret="s3cret", timestamp=str(now - 3600), body=b'{"a":1}',
                                        signature=webhook_sign(secret="s3cret", timestamp=now - 3600,
                                                               body=b'{"a":1}'))


@pytest.fixture
def receiver() -> Any:
    r = Receiver(free_port())
    yield r
    r.stop()


# The receiver is plain HTTP on loopback: both refused by default (SSRF controls, tests/api/test_webhook_egress.py).
LOOPBACK_RECEIVER_ALLOWED = {"PDS_WEBHOOK_ALLOW_HTTP": True, "PDS_WEBHOOK_ALLOW_PRIVATE": True}


@override_settings(PDS_WEBHOOK_INCIDENT_AFTER=3, PDS_WEBHOOK_BACKOFF_SECONDS=30, **LOOPBACK_RECEIVER_ALLOWED)
def test_receiver_down_then_up_gets_every_event_in_order(world: Any, receiver: Receiver) -> None:
    sub = subscribe(world, receiver.url)
    first = request_create(world)
    second = request_create(world)
    case = Case.objects.get(public_id=first["id"])
    report_sign(case, world.users["radiologist"], addendum="Précision.")
    sub_id = sub["id"]

    # Receiver down: the head fails, is rescheduled with backoff, and blocks the later events of that request.
    assert webhook_deliveries_drive(subscription_id=sub_id, case_id=case.pk) == "failed"
    head = WebhookDelivery.objects.filter(case=case).order_by("created_at", "pk").first()
    assert head.attempts == 1 and head.last_error and head.next_attempt_at > timezone.now()
    assert 29 <= (head.next_attempt_at - head.last_attempt_at).total_seconds() <= 31
    assert webhook_deliveries_drive(subscription_id=sub_id, case_id=case.pk) == "waiting"
    assert WebhookDelivery.objects.filter(case=case, attempts=0).count() == 2
    for attempt in (2, 3, 4):  # time passes: each retry is due
        WebhookDelivery.objects.filter(pk=head.pk).update(next_attempt_at=timezone.now())
        assert webhook_deliveries_drive(subscription_id=sub_id, case_id=case.pk) == "failed"
        head.refresh_from_db()
        assert head.attempts == attempt
    assert 239 <= (head.next_attempt_at - head.last_attempt_at).total_seconds() <= 241  # 30 s * 2^(4-1)
    incidents = TechnicalIncident.objects.filter(kind="webhook_failed", case=case)
    assert incidents.count() == 1  # one incident, not one per attempt

    # Receiver up: the sweeper finds every due queue; all events arrive, in order per request.
    receiver.start()
    WebhookDelivery.objects.filter(pk=head.pk).update(next_attempt_at=timezone.now())
    queues = webhook_due_queues()
    assert (sub_id, case.pk) in queues
    for sub_pk, case_pk in queues:
        assert webhook_deliveries_drive(subscription_id=sub_pk, case_id=case_pk) == "done"
    assert receiver.events()[:3] == [(first["id"], "request.created"), (first["id"], "report.signed"),
                                     (first["id"], "report.addendum")]
    assert (second["id"], "request.created") in receiver.events()
    assert not WebhookDelivery.objects.exclude(status="delivered").exists()
    for r in receiver.received:
        h = r["headers"]
        assert webhook_signature_verify(secret=sub["secret"], timestamp=h["x-pds-timestamp"], body=r["body"],
                                        signature=h["x-pds-signature"])
        assert h["x-pds-event"] == r["json"]["event"] and h["x-pds-delivery"] == r["json"]["id"]
    deliveries = world.client("a_ro").get(f"/api/v1/webhooks/{sub_id}/deliveries/")
    assert deliveries.status_code == 404  # a subscription belongs to the key that created it
    listed = world.client("a_rw").get(f"/api/v1/webhooks/{sub_id}/deliveries/").json()
    assert {d["status"] for d in listed} == {"delivered"} and len(listed) == 4


@override_settings(**LOOPBACK_RECEIVER_ALLOWED)
def test_receiver_error_status_is_a_failure(world: Any, receiver: Receiver) -> None:
    receiver.status = 500
    receiver.start()
    sub = subscribe(world, receiver.url)
    created = request_create(world)
    case = Case.objects.get(public_id=created["id"])
    assert webhook_deliveries_drive(subscription_id=sub["id"], case_id=case.pk) == "failed"
    d = WebhookDelivery.objects.get(case=case)
    assert d.last_status_code == 500 and d.status == "pending" and d.last_error == "HTTP 500"
