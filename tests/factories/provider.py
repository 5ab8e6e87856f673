"""A private provider's queue on the demo region (issue 18, point 14): Télérad's line as a queue open now."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.utils import timezone

from apps.rosters.models import OnCallLine, ProviderQueue, Shift
from apps.routing.models import RoutingRule
from apps.routing.services import routing_rule_save

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def hours_around(now: dt.datetime, *, open_now: bool) -> dict[str, Any]:
    local = now.astimezone(PARIS)
    if open_now:
        return {"weekday_start": (local - dt.timedelta(hours=1)).time().replace(second=0, microsecond=0),
                "weekday_end": (local + dt.timedelta(hours=1)).time().replace(second=0, microsecond=0)}
    return {"weekday_start": (local + dt.timedelta(hours=1)).time().replace(second=0, microsecond=0),
            "weekday_end": (local + dt.timedelta(hours=2)).time().replace(second=0, microsecond=0),
            "weekends": False, "holidays": False}


def provider_queue_setup(demo: Any) -> ProviderQueue:
    """Télérad's line as a queue, first target of a Vierzon CT rule, the southern pool second (Dr Durand of
    Tours alone on duty there)."""
    now = timezone.now()
    telerad = OnCallLine.objects.get(region=demo.region, kind="provider")
    pool = OnCallLine.objects.get(region=demo.region, name__startswith="Ligne mutualisée Sud")
    Shift.objects.filter(line__in=[telerad, pool], end__gt=now - dt.timedelta(hours=2)).delete()
    Shift.objects.create(line=pool, radiologist=demo.users["radio.durand1"], role="primary", kind="remote",
                         start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=6))
    queue = ProviderQueue.objects.create(line=telerad, capacity_per_hour=2, sla_urgent_minutes=20,
                                         **hours_around(now, open_now=True))
    routing_rule_save(rule=RoutingRule(region=demo.region, name="Vierzon CT: Télérad d'abord", scope_kind="site",
                                       site=demo.establishments["vierzon"]),
                      modality_codes=["CT"], line_ids=[telerad.pk, pool.pk])
    return queue
