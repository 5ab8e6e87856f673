"""Issue 15: a webhook POST was made inside the transaction that locked its delivery row. The receiver's
timeout then held the row lock and, on SQLite (BEGIN IMMEDIATE), the database's only write lock: every
image, request and report of the platform waited for a slow RIS. The delivery is now claimed and settled in
two short transactions, the request sent between them (docs/locking.md)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from apps.api import egress
from apps.api.models import WebhookDelivery
from apps.api.services import webhook_deliveries_drive, webhook_send_lease
from apps.worklist.models import Case
from tests.api.conftest import request_create, world_create
from tests.api.receiver import Receiver
from tests.api.test_webhooks import LOOPBACK_RECEIVER_ALLOWED, subscribe
from tests.support.processes import free_port


@pytest.fixture
def committed_world(transactional_db: Any) -> Any:
    return world_create()


@override_settings(**LOOPBACK_RECEIVER_ALLOWED)
def test_no_transaction_is_open_while_the_receiver_is_called(committed_world: Any, monkeypatch: Any) -> None:
    receiver = Receiver(free_port())
    receiver.start()
    seen: list[dict[str, Any]] = []
    real_post = egress.post

    def post_watched(url: str, **kw: Any) -> Any:
        # What the database looks like while the receiver is being called (the real request still goes out).
        pending = WebhookDelivery.objects.get(status="pending")
        seen.append({"in_transaction": connection.in_atomic_block,
                     "leased": pending.next_attempt_at > timezone.now()})
        return real_post(url, **kw)

    monkeypatch.setattr(egress, "post", post_watched)
    try:
        sub = subscribe(committed_world, receiver.url, events=["request.created"])
        case = Case.objects.get(public_id=request_create(committed_world)["id"])
        assert webhook_deliveries_drive(subscription_id=sub["id"], case_id=case.pk) == "done"
    finally:
        receiver.stop()
    # Outside any transaction, and leased: another worker sees the head as not due and waits behind it.
    assert seen == [{"in_transaction": False, "leased": True}]
    delivery = WebhookDelivery.objects.get(case=case)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 204)
    assert len(receiver.events()) == 1


@override_settings(**LOOPBACK_RECEIVER_ALLOWED)
def test_a_leased_head_is_not_sent_twice_nor_overtaken(committed_world: Any) -> None:
    sub = subscribe(committed_world, "http://127.0.0.1:9/", events=["request.created", "request.cancelled"])
    case = Case.objects.get(public_id=request_create(committed_world)["id"])
    head = WebhookDelivery.objects.get(case=case)
    # Another worker claimed it a moment ago and is sending it.
    WebhookDelivery.objects.filter(pk=head.pk).update(next_attempt_at=timezone.now() + webhook_send_lease())
    assert webhook_deliveries_drive(subscription_id=sub["id"], case_id=case.pk) == "waiting"
    head.refresh_from_db()
    assert head.attempts == 0 and head.status == "pending"
