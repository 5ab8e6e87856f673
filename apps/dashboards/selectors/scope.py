"""The shared ground of every panel: the filter, the table, the cases in scope and the period split."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from django.db.models import Q, QuerySet

from apps.core.timezones import PARIS
from apps.dashboards.models import DashboardAggregateDay

EMERGENCY_URGENCIES = ("vital", "urgent")


@dataclass(frozen=True)
class DashboardFilter:
    region_id: int
    start: dt.datetime  # UTC, inclusive
    end: dt.datetime  # UTC, exclusive
    territory_id: int | None = None
    site_id: int | None = None
    modality: str | None = None
    # An establishment administrator sees only the cases of their establishment (as requesting site or as
    # holder of the line that read them).
    scope_establishment_id: int | None = None


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    notes: tuple[str, ...] = field(default=())

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


def _region_site_ids(f: DashboardFilter) -> list[int]:
    # The region's sites are resolved first (a few dozen ids): the year-long scans then filter on
    # site_id directly instead of joining establishments and territories for every case.
    sites = establishments_in_scope(replace(f, scope_establishment_id=None))
    return list(sites.values_list("pk", flat=True)) or [-1]


def held_line_ids(f: DashboardFilter) -> list[int]:
    from apps.rosters.models import OnCallLine

    if not f.scope_establishment_id:
        return []
    return list(OnCallLine.objects.filter(holders=f.scope_establishment_id).values_list("pk", flat=True))


def case_scope_q(f: DashboardFilter, *, prefix: str = "", ignore_modality: bool = False) -> Q:
    """The filter's conditions on a case, as a Q usable from the case (prefix "") or from a related model
    (prefix "case__")."""
    q = Q(**{f"{prefix}site_id__in": _region_site_ids(f), f"{prefix}requested_at__gte": f.start,
             f"{prefix}requested_at__lt": f.end})
    if f.modality and not ignore_modality:
        q &= Q(**{f"{prefix}modality_id": f.modality})
    if f.scope_establishment_id:
        q &= Q(**{f"{prefix}site_id": f.scope_establishment_id}) | Q(**{f"{prefix}assigned_line_id__in":
                                                                         held_line_ids(f)})
    return q


def signed_scope_q(f: DashboardFilter) -> Q:
    """``case_scope_q`` for interpretations: the reports signed in the period (not the requests made in it)."""
    q = Q(site_id__in=_region_site_ids(f), signed_at__gte=f.start, signed_at__lt=f.end)
    if f.modality:
        q &= Q(modality_id=f.modality)
    if f.scope_establishment_id:
        q &= Q(site_id=f.scope_establishment_id) | Q(assigned_line_id__in=held_line_ids(f))
    return q


def paris_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[midnight, next midnight) of a Paris calendar day: 23 or 25 hours on DST days."""
    return (dt.datetime.combine(day, dt.time(0), tzinfo=PARIS),
            dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=PARIS))


@dataclass(frozen=True)
class PeriodSplit:
    """A filter's period as aggregated days (inclusive runs of consecutive Paris days) and live UTC ranges
    covering the rest of [start, end)."""

    day_runs: tuple[tuple[dt.date, dt.date], ...]
    live: tuple[tuple[dt.datetime, dt.datetime], ...]


def period_split(f: DashboardFilter, *, use_aggregates: bool = True) -> PeriodSplit:
    if not use_aggregates or f.end <= f.start:
        return PeriodSplit((), ((f.start, f.end),))
    first = f.start.astimezone(PARIS).date()
    if paris_day_bounds(first)[0] < f.start:
        first += dt.timedelta(days=1)
    last = f.end.astimezone(PARIS).date() - dt.timedelta(days=1)  # the last day that ends by f.end
    days = list(DashboardAggregateDay.objects.filter(day__gte=first, day__lte=last).order_by("day")
                .values_list("day", flat=True)) if first <= last else []
    runs: list[tuple[dt.date, dt.date]] = []
    for day in days:
        if runs and runs[-1][1] + dt.timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    live = []
    cursor = f.start
    for a, b in runs:
        run_start, run_end = paris_day_bounds(a)[0], paris_day_bounds(b)[1]
        if cursor < run_start:
            live.append((cursor, run_start))
        cursor = run_end
    if cursor < f.end:
        live.append((cursor, f.end))
    return PeriodSplit(tuple(runs), tuple(live))


def aggregate_scope_q(f: DashboardFilter, split: PeriodSplit, *, ignore_modality: bool = False,
                       ignore_establishment_scope: bool = False) -> Q:
    """``case_scope_q`` on the daily aggregates of the split's aggregated days. ``DailyTurnaround`` has
    the line inside its records: the establishment scope is then applied to the records."""
    days = Q()
    for a, b in split.day_runs:
        days |= Q(day__gte=a, day__lte=b)
    q = days & Q(site_id__in=_region_site_ids(f))
    if f.modality and not ignore_modality:
        q &= Q(modality_id=f.modality)
    if f.scope_establishment_id and not ignore_establishment_scope:
        q &= Q(site_id=f.scope_establishment_id) | Q(line_id__in=held_line_ids(f))
    return q


def live_filters(f: DashboardFilter, split: PeriodSplit) -> list[DashboardFilter]:
    return [replace(f, start=a, end=b) for a, b in split.live]


def cases_in_scope(f: DashboardFilter, *, ignore_modality: bool = False) -> QuerySet[Any]:
    from apps.worklist.models import Case

    return Case.objects.filter(case_scope_q(f, ignore_modality=ignore_modality))


def establishments_in_scope(f: DashboardFilter) -> QuerySet[Any]:
    from apps.regions.models import Establishment

    qs = Establishment.objects.filter(territory__region_id=f.region_id)
    if f.territory_id:
        qs = qs.filter(territory_id=f.territory_id)
    if f.scope_establishment_id:
        qs = qs.filter(pk=f.scope_establishment_id)
    elif f.site_id:
        qs = qs.filter(pk=f.site_id)
    return qs
