"""Thin Celery tasks of the traceability context."""

from __future__ import annotations

from celery import shared_task

from apps.core.context import acting_as


@shared_task(name="traceability.freeze_teleact_records", acks_late=True)
def freeze_teleact_records() -> int:
    """Freeze the tele-act record of every newly signed case (safe to re-run)."""
    from apps.traceability.services import teleact_records_freeze_pending

    with acting_as(channel="worker"):
        return teleact_records_freeze_pending()


BEAT_SCHEDULE = {
    "traceability-freeze-teleact-records": {"task": "traceability.freeze_teleact_records", "schedule": 60.0},
}
