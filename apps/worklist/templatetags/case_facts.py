"""Template filters for the facts a worklist row shows about a case: ``{{ case|patient_age }}``,
``{{ case|sla }}`` (ok / warn / late, the waiting time against the regional target)."""

from __future__ import annotations

import time
from typing import Any

from django import template
from django.utils import timezone

from apps.regions.models import SERVICE_LEVEL_DEFAULTS, Territory
from apps.regions.selectors import service_levels
from apps.worklist.presentation import age_label, sla_level

register = template.Library()


@register.filter
def patient_age(case: Any) -> str:
    return age_label(case.patient_birth_date, timezone.localdate())


# The region's targets, read at most once a minute per process and site's territory (a worklist shows many rows of
# few territories; keyed by ``site.territory_id``, which the row has without a query).
_TARGETS_TTL = 60.0
_targets: dict[int, tuple[float, dict[str, int]]] = {}


def territory_request_targets(territory_id: int) -> dict[str, int]:
    """Request -> signed report per urgency, the territory's region's (apps.regions.selectors.service_levels)."""
    cached = _targets.get(territory_id)
    if cached is None or time.monotonic() - cached[0] > _TARGETS_TTL:
        region_id = Territory.objects.filter(pk=territory_id).values_list("region_id", flat=True).first()
        levels = service_levels(region_id) if region_id is not None else SERVICE_LEVEL_DEFAULTS
        cached = (time.monotonic(), {u: s["request_signed"] for u, s in levels.items()})
        _targets[territory_id] = cached
    return cached[1]


@register.filter
def sla(case: Any) -> str:
    """The waiting time of an open case (of a signed one: until signature) against its region's target."""
    end = case.signed_at or timezone.now()
    return sla_level(case.urgency, end - case.requested_at, territory_request_targets(case.site.territory_id))
