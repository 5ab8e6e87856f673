"""A private provider's contracted hours as pure functions (no database, no clock): is it open at an instant,
and which stretches of a period it covers.

Hours are local (Europe/Paris) wall-clock times: every weeknight from ``weekday_start`` to ``weekday_end``
the next morning (or the same day when the end is later than the start), plus, when contracted, whole
weekends (Saturday 00:00 to Monday 00:00) and whole public holidays of the requesting site. The contract is
independent of the region's PDS window: a provider may start at 18:00 where the region's nights begin at
18:30, or cover only 20:00-08:00.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from apps.core.timezones import PARIS


@dataclass(frozen=True)
class ContractHours:
    weekday_start: dt.time
    weekday_end: dt.time
    weekends: bool = True
    holidays: bool = True

    @property
    def label(self) -> str:
        """"18:00-08:00" (+ weekends, holidays): how the hours read in a reason or the coverage page."""
        parts = [f"{self.weekday_start:%H:%M}-{self.weekday_end:%H:%M}"]
        if self.weekends:
            parts.append("weekends")
        if self.holidays:
            parts.append("holidays")
        return ", ".join(parts)


def _in_window(hours: ContractHours, t: dt.time) -> bool:
    start, end = hours.weekday_start, hours.weekday_end
    if start < end:
        return start <= t < end
    return t >= start or t < end  # across midnight


def contract_open(hours: ContractHours, at: dt.datetime, *, holidays: frozenset[dt.date] = frozenset()) -> bool:
    """Whether the contract covers the instant ``at`` (aware), ``holidays`` being the requesting site's public
    holidays around it."""
    local = at.astimezone(PARIS)
    if hours.weekends and local.weekday() >= 5:
        return True
    if hours.holidays and local.date() in holidays:
        return True
    return _in_window(hours, local.time())


def contract_spans(hours: ContractHours, start: dt.datetime, end: dt.datetime, *,
                   holidays: frozenset[dt.date] = frozenset()) -> list[tuple[dt.datetime, dt.datetime]]:
    """The stretches of [start, end) the contract covers, merged, as aware UTC datetimes. Walks the local days
    (DST-safe: every boundary is a local wall-clock time made aware on its own day)."""
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    day = start.astimezone(PARIS).date() - dt.timedelta(days=1)
    last = end.astimezone(PARIS).date()
    while day <= last:
        midnight = dt.datetime.combine(day, dt.time(0), PARIS)
        next_midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), PARIS)
        if (hours.weekends and day.weekday() >= 5) or (hours.holidays and day in holidays):
            spans.append((midnight, next_midnight))
        elif hours.weekday_start < hours.weekday_end:
            spans.append((dt.datetime.combine(day, hours.weekday_start, PARIS),
                           dt.datetime.combine(day, hours.weekday_end, PARIS)))
        else:
            spans.append((dt.datetime.combine(day, hours.weekday_start, PARIS), next_midnight))
            spans.append((midnight, dt.datetime.combine(day, hours.weekday_end, PARIS)))
        day += dt.timedelta(days=1)
    # In UTC from here: aware datetimes sharing one tzinfo compare as wall-clock times (wrong across DST).
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    utc = [(s.astimezone(dt.UTC), e.astimezone(dt.UTC)) for s, e in spans]
    clipped = sorted((max(s, start), min(e, end)) for s, e in utc if e > start and s < end)
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for s, e in clipped:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged
