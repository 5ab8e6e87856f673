"""What the worklists show about a case beyond its fields: the patient's age, the waiting time and how it
stands against the regional target. Pure functions over plain values (the clock is an argument)."""

from __future__ import annotations

import datetime as dt

from django.utils.translation import ngettext

from apps.regions.models import SERVICE_LEVEL_DEFAULTS
from apps.worklist.identity import age_years

# Request -> signed report, per urgency, in minutes: the defaults of the regional targets; a case is measured
# against its region's own (apps.regions.selectors.service_levels, stage "request_signed"), as the dashboard.
SLA_TARGET_MINUTES: dict[str, int] = {u: s["request_signed"] for u, s in SERVICE_LEVEL_DEFAULTS.items()}
# Below half the target a case is on time ("ok"), then "warn" until the target, then "late".
SLA_WARN_FRACTION = 0.5


def fmt_duration(delta: dt.timedelta | None) -> str:
    if delta is None:
        return ""
    minutes = max(int(delta.total_seconds() // 60), 0)
    return f"{minutes // 60} h {minutes % 60:02d}" if minutes >= 60 else f"{minutes} min"


def sla_level(urgency: str, waited: dt.timedelta, targets: dict[str, int] | None = None) -> str:
    """``ok``, ``warn`` or ``late`` for a case of this urgency that has waited this long (``targets``: request ->
    signed report per urgency, the region's; the defaults when not given)."""
    targets = targets or SLA_TARGET_MINUTES
    target = targets.get(urgency, targets.get("urgent", SLA_TARGET_MINUTES["urgent"]))
    minutes = waited.total_seconds() / 60
    if minutes >= target:
        return "late"
    return "warn" if minutes >= target * SLA_WARN_FRACTION else "ok"


def age_label(birth_date: dt.date, on: dt.date) -> str:
    """"76 years", or in months under 2 years (a child's dose and protocol depend on it)."""
    years = age_years(birth_date, on)
    if years >= 2:
        return ngettext("%(n)d year", "%(n)d years", years) % {"n": years}
    months = (on.year - birth_date.year) * 12 + on.month - birth_date.month - int(on.day < birth_date.day)
    months = max(months, 0)
    return ngettext("%(n)d month", "%(n)d months", months) % {"n": months}
