"""A real Celery worker delivers webhooks to a real HTTP receiver on loopback that is down, then up:
every event arrives, in order per request, with a valid signature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from apps.api.models import WebhookDelivery
from apps.api.services import DELIVERY_FAILED, webhook_signature_verify
from apps.worklist.models import Case
from tests.api.conftest import report_sign, request_create, world_create
from tests.api.receiver import Receiver
from tests.support.processes import celery_worker_cmd, free_port, running, wait_until

pytestmark = pytest.mark.integration

# The receiver is plain HTTP on loopback, refused by default (SSRF controls): allowed explicitly, here for the
# registration (this process) and in the worker's environment.
LOOPBACK_RECEIVER_ALLOWED = {"PDS_WEBHOOK_ALLOW_HTTP": "1", "PDS_WEBHOOK_ALLOW_PRIVATE": "1"}


@override_settings(PDS_WEBHOOK_ALLOW_HTTP=True, PDS_WEBHOOK_ALLOW_PRIVATE=True)
def test_worker_delivers_every_event_after_the_receiver_comes_back(process_env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    env = {**process_env, "PDS_WEBHOOK_BACKOFF_SECONDS": "0.3", "PDS_WEBHOOK_BACKOFF_MAX_SECONDS": "1",
           "PDS_WEBHOOK_INCIDENT_AFTER": "3", **LOOPBACK_RECEIVER_ALLOWED}
    world = world_create()
    receiver = Receiver(free_port())
    log = tmp_path / "worker.log"
    with running(celery_worker_cmd(), env, log, ready=lambda: b"ready." in log.read_bytes(), timeout=60):
        sub = world.client("a_rw").post("/api/v1/webhooks/", {
            "url": receiver.url, "events": ["request.created", "report.signed", "report.addendum"]},
            format="json").json()
        first = request_create(world)
        second = request_create(world, urgency="urgent")
        case = Case.objects.get(public_id=first["id"])
        report_sign(case, world.users["radiologist"], addendum="Précision.")

        # Down: the worker keeps retrying the head of each request's queue; later events wait behind it.
        wait_until(lambda: WebhookDelivery.objects.filter(attempts__gte=3, incident_recorded=True).count() == 2,
                   timeout=60, message="retries while the receiver is down")
        assert not WebhookDelivery.objects.filter(status="delivered").exists()
        assert receiver.received == []

        receiver.start()
        try:
            wait_until(lambda: WebhookDelivery.objects.filter(status="delivered").count() == 4, timeout=60,
                       message="every delivery once the receiver is up")
        finally:
            receiver.stop()
    events = receiver.events()
    assert [e for e in events if e[0] == first["id"]] == [
        (first["id"], "request.created"), (first["id"], "report.signed"), (first["id"], "report.addendum")]
    assert [e for e in events if e[0] == second["id"]] == [(second["id"], "request.created")]
    for r in receiver.received:
        h: dict[str, Any] = r["headers"]
        assert webhook_signature_verify(secret=sub["secret"], timestamp=h["x-pds-timestamp"], body=r["body"],
                                        signature=h["x-pds-signature"])


@override_settings(PDS_WEBHOOK_ALLOW_HTTP=True, PDS_WEBHOOK_ALLOW_PRIVATE=True)
def test_worker_with_the_default_settings_never_posts_to_a_loopback_receiver(process_env: dict[str, str],
                                                                             tmp_path: Path) -> None:
    """Registered while allowed (as before the SSRF controls), the worker's own default settings refuse it."""
    env = {**process_env, "PDS_WEBHOOK_BACKOFF_SECONDS": "0.3", "PDS_WEBHOOK_BACKOFF_MAX_SECONDS": "1"}
    for name in LOOPBACK_RECEIVER_ALLOWED:
        env.pop(name, None)
    world = world_create()
    receiver = Receiver(free_port())
    receiver.start()
    log = tmp_path / "worker.log"
    try:
        with running(celery_worker_cmd(), env, log, ready=lambda: b"ready." in log.read_bytes(), timeout=60):
            sub = world.client("a_rw").post("/api/v1/webhooks/", {"url": receiver.url, "events": ["request.created"]},
                                            format="json").json()
            request_create(world)
            wait_until(lambda: WebhookDelivery.objects.filter(attempts__gte=2).exists(), timeout=60,
                       message="the worker tries the delivery")
    finally:
        receiver.stop()
    assert receiver.received == []
    listed = world.client("a_rw").get(f"/api/v1/webhooks/{sub['id']}/deliveries/").json()
    assert [(d["status"], d["last_status_code"], d["last_error"]) for d in listed] == [
        ("pending", None, DELIVERY_FAILED)]
    assert b"refused by policy" in log.read_bytes()
