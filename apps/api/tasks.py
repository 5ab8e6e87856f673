"""Webhook delivery tasks: ids in, one service call, safe to re-run (the outbox row is the truth)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.api import services

BEAT_SCHEDULE = {
    "api-webhook-sweep": {"task": "api.webhook_sweep", "schedule": float(settings.PDS_WEBHOOK_SWEEP_SECONDS)},
}


@shared_task(name="api.webhook_deliver", acks_late=True, ignore_result=True)
def webhook_deliver(subscription_id: int, case_id: int) -> str:
    """Drive one (subscription, case) queue; on failure schedule the next attempt (backoff).

    Only the task that just failed reschedules: the others ("waiting", "busy") end, so one retry chain
    exists per queue; the sweeper re-creates it if its message is lost."""
    from apps.api.models import DeliveryStatus, WebhookDelivery

    outcome = services.webhook_deliveries_drive(subscription_id=subscription_id, case_id=case_id)
    if outcome == "failed":
        head = (WebhookDelivery.objects.filter(subscription_id=subscription_id, case_id=case_id,
                                               status=DeliveryStatus.PENDING)
                .order_by("created_at", "pk").first())
        if head is not None:
            from django.utils import timezone

            delay = max(0.0, (head.next_attempt_at - timezone.now()).total_seconds())
            webhook_deliver.apply_async(args=[subscription_id, case_id], countdown=delay + 0.05)
    return outcome


@shared_task(name="api.webhook_sweep", acks_late=True, ignore_result=True)
def webhook_sweep() -> int:
    """Re-drive every queue whose head is due (lost messages, restarts, a receiver back up)."""
    pairs = services.webhook_due_queues()
    for subscription_id, case_id in pairs:
        webhook_deliver.delay(subscription_id, case_id)
    return len(pairs)
