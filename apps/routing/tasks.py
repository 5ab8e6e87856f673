"""Thin Celery tasks: ids in, one service call, safe to re-run (late ack: a killed worker's task is redelivered)."""

from __future__ import annotations

from celery import shared_task

from apps.core.context import acting_as

ESCALATION_TICK_SECONDS = 2.0
RECONCILE_SECONDS = 30.0

BEAT_SCHEDULE = {
    "routing-escalations": {"task": "routing.escalate_due", "schedule": ESCALATION_TICK_SECONDS},
    "routing-reconcile-unassigned": {"task": "routing.reconcile_unassigned", "schedule": RECONCILE_SECONDS},
}


@shared_task(name="routing.route_case", acks_late=True, autoretry_for=(Exception,), retry_backoff=2,
             retry_backoff_max=30, max_retries=5)
def route_case(case_id: int) -> None:
    from apps.routing.services import case_route

    with acting_as(channel="worker", user_id=None, username="routing"):
        case_route(case_id=case_id)


@shared_task(name="routing.escalate_due", acks_late=True)
def escalate_due() -> int:
    from apps.routing.services import escalations_run

    with acting_as(channel="worker", user_id=None, username="routing"):
        return escalations_run()


@shared_task(name="routing.reconcile_unassigned", acks_late=True)
def reconcile_unassigned() -> int:
    from apps.routing.services import unassigned_reconcile

    with acting_as(channel="worker", user_id=None, username="routing"):
        return unassigned_reconcile()
