"""Thin Celery tasks of the audit context."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.audit.services import audit_seal
from apps.core.context import acting_as


@shared_task(name="audit.seal", acks_late=True)
def seal() -> int:
    """Chain the entries written since the last run and checkpoint the head (safe to re-run; a second sealer
    running at the same time returns at once)."""
    with acting_as(channel="worker"):
        return audit_seal().sealed


BEAT_SCHEDULE = {
    # A queued run older than a few periods is dropped: the next one seals the same entries.
    "audit-seal": {"task": "audit.seal", "schedule": settings.PDS_AUDIT_SEAL_SECONDS,
                   "options": {"expires": 3 * settings.PDS_AUDIT_SEAL_SECONDS}},
}
