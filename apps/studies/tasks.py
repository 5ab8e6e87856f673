"""Periodic completion of quiet studies and re-sending of pending routing messages.

The gateway runs the same reconciler in its own process every second (so that completion does
not depend on the broker); this beat task is the safety net when the gateway is stopped.
Both are compare-and-set: running them together is harmless.
"""

from __future__ import annotations

from celery import shared_task

from apps.core.context import acting_as

RECONCILE_TASK = "studies.reconcile"

BEAT_SCHEDULE = {
    "studies-reconcile": {"task": RECONCILE_TASK, "schedule": 2.0, "options": {"expires": 10}},
}


@shared_task(name=RECONCILE_TASK, acks_late=True, ignore_result=True)
def studies_reconcile_task() -> dict[str, int]:
    from apps.studies.services import studies_reconcile

    with acting_as(channel="worker"):
        result = studies_reconcile()
    return {"completed": len(result.completed), "sent": len(result.sent), "pending": len(result.pending)}
