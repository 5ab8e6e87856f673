"""Thin Celery tasks: ids in, one service call, safe to re-run (late ack: a killed worker's task is redelivered)."""

from __future__ import annotations

from contextlib import AbstractContextManager

from celery import shared_task

from apps.core.context import ActorContext, acting_as
from apps.routing.followups import followups_run
from apps.routing.notifiers import DELIVER_TASK
from apps.routing.queue import REOFFER_TASK, ROUTE_TASK
from apps.routing.services import (
    case_route,
    coordinator_cases_reoffer,
    escalations_run,
    notification_deliver,
    notifications_pending_redrive,
    unassigned_reconcile,
)
from apps.routing.sla import reports_overdue_alert

ESCALATION_TICK_SECONDS = 2.0
RECONCILE_SECONDS = 30.0
NOTIFICATION_REDRIVE_SECONDS = 60.0
REPORTS_OVERDUE_SECONDS = 30.0
FOLLOWUPS_SECONDS = 30.0

BEAT_SCHEDULE = {
    "routing-escalations": {"task": "routing.escalate_due", "schedule": ESCALATION_TICK_SECONDS},
    "routing-reconcile-unassigned": {"task": "routing.reconcile_unassigned", "schedule": RECONCILE_SECONDS},
    "routing-reports-overdue": {"task": "routing.reports_overdue", "schedule": REPORTS_OVERDUE_SECONDS},
    "routing-redrive-notifications": {"task": "routing.redrive_notifications",
                                      "schedule": NOTIFICATION_REDRIVE_SECONDS},
    "routing-followups": {"task": "routing.followups", "schedule": FOLLOWUPS_SECONDS},
}


def _as_routing_worker() -> AbstractContextManager[ActorContext]:
    """Every routing task acts as the routing worker: what it writes is audited under that name, no user."""
    return acting_as(channel="worker", user_id=None, username="routing")


@shared_task(name=ROUTE_TASK, acks_late=True, autoretry_for=(Exception,), retry_backoff=2,
             retry_backoff_max=30, max_retries=5)
def route_case(case_id: int) -> None:
    with _as_routing_worker():
        case_route(case_id=case_id)


@shared_task(name=DELIVER_TASK, acks_late=True, autoretry_for=(Exception,), retry_backoff=2,
             retry_backoff_max=60, max_retries=5)
def deliver_notification(notification_id: int) -> str:
    """One email or SMS. A backend failure is recorded by the service (and escalates an assignment alert);
    what escapes it (the database) is retried with backoff."""
    with _as_routing_worker():
        return notification_deliver(notification_id=notification_id)


@shared_task(name="routing.escalate_due", acks_late=True)
def escalate_due() -> int:
    with _as_routing_worker():
        return escalations_run()


@shared_task(name="routing.reconcile_unassigned", acks_late=True)
def reconcile_unassigned() -> int:
    with _as_routing_worker():
        return unassigned_reconcile()


@shared_task(name=REOFFER_TASK, acks_late=True)
def reoffer_waiting(region_id: int) -> int:
    """Re-offer the region's cases waiting on the coordinator (sent when a radiologist acknowledges a case)."""
    with _as_routing_worker():
        return coordinator_cases_reoffer(region_id=region_id)


@shared_task(name="routing.redrive_notifications", acks_late=True)
def redrive_notifications() -> int:
    with _as_routing_worker():
        return notifications_pending_redrive()


@shared_task(name="routing.reports_overdue", acks_late=True)
def reports_overdue() -> int:
    """Alert the coordinator of acknowledged cases past their report target (apps.routing.sla)."""
    with _as_routing_worker():
        return reports_overdue_alert()


@shared_task(name="routing.followups", acks_late=True)
def followups() -> int:
    """Unconfirmed critical finding calls and overdue expert opinions (apps.routing.followups)."""
    with _as_routing_worker():
        return followups_run()
