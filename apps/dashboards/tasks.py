"""Thin Celery tasks of the dashboards context."""

from __future__ import annotations

from celery import shared_task
from celery.schedules import crontab

from apps.core.context import acting_as


@shared_task(name="dashboards.refresh_aggregates", acks_late=True)
def refresh_aggregates() -> int:
    """Recompute the daily aggregates of the last closed days (idempotent, safe to re-run)."""
    from apps.dashboards.services import dashboard_aggregates_refresh

    with acting_as(channel="worker"):
        return len(dashboard_aggregates_refresh())


BEAT_SCHEDULE = {
    # Beat runs in UTC: 01:30 UTC is 02:30 or 03:30 in Paris, after the day has closed on either clock.
    "dashboards-refresh-aggregates": {"task": "dashboards.refresh_aggregates",
                                      "schedule": crontab(hour=1, minute=30)},
}
