"""Writes of the dashboards context: the daily aggregates the steering panels read.

Invariants:
- a Paris day is aggregated only once it is closed (before today on the Paris clock);
- a day is recomputed wholesale -- its rows deleted and rewritten, its marker set -- in one transaction,
  with the marker row locked first, so two rebuilds of the same day (the nightly task and the command)
  run one after the other and re-running is harmless;
- the rows of a day are a pure function of the cases requested that day, their events and the shifts
  their radiologists worked (and, for the hourly distribution, of the reports signed that day): late changes (a report signed after midnight, a case backfilled, an
  escalation recorded the next morning) are picked up by recomputing the day (``dashboard_aggregates_refresh``
  recomputes the last ``REFRESH_DAYS`` closed days every night, and older days whose cases were saved
  since they were built). Roster edits to past shifts need ``manage.py rebuild_dashboard_aggregates
  --since <date>``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.dashboards.models import (
    DailyCaseAggregate,
    DailyCaseEventCount,
    DailyInterpretationHours,
    DailyShiftLoad,
    DailyTurnaround,
    DashboardAggregateDay,
)
from apps.dashboards.selectors import EMERGENCY_URGENCIES, PARIS, paris_day_bounds
from apps.dashboards.turnaround import TIMESTAMP_FIELDS, case_record, records_pack

# Recomputed every night: a case requested on a day is normally signed, and its declines and escalations
# recorded, within hours; a week also absorbs a few nights without a beat.
REFRESH_DAYS = 7
EVENT_KINDS = ("declined", "escalated")

_CASE_FIELDS = ("pk", "site_id", "modality_id", "urgency", "assigned_line_id", "assigned_to_id", "overflowed",
                "escalation_level", "assignment_state", *TIMESTAMP_FIELDS)


def paris_today(now: dt.datetime | None = None) -> dt.date:
    return (now or timezone.now()).astimezone(PARIS).date()


def _day_rows(day: dt.date) -> tuple[list[Any], list[Any], list[Any], list[Any], int]:
    """The aggregate rows of one Paris day (unsaved) and its number of cases."""
    from apps.rosters.models import Shift
    from apps.worklist.models import Case, CaseEvent

    start, end = paris_day_bounds(day)
    cases = list(Case.objects.filter(requested_at__gte=start, requested_at__lt=end).order_by()
                 .values(*_CASE_FIELDS))
    counts: dict[tuple[Any, ...], DailyCaseAggregate] = {}
    records: dict[tuple[int, str], list[tuple[int, int, list[float]]]] = defaultdict(list)
    for c in cases:
        key = (c["site_id"], c["modality_id"], c["assigned_line_id"])
        row = counts.get(key)
        if row is None:
            row = counts[key] = DailyCaseAggregate(day=day, site_id=key[0], modality_id=key[1], line_id=key[2])
        row.requests += 1
        row.interpretations += c["signed_at"] is not None
        row.emergency_interpretations += c["signed_at"] is not None and c["urgency"] in EMERGENCY_URGENCIES
        row.assigned += c["assigned_at"] is not None
        row.overflowed += bool(c["overflowed"])
        row.escalated += c["escalation_level"] > 0
        row.to_coordinator += c["assignment_state"] == "coordinator"
        hour = f"requests_h{c['requested_at'].astimezone(PARIS).hour:02d}"
        setattr(row, hour, getattr(row, hour) + 1)
        record = case_record(c)
        if record is not None:
            records[(c["site_id"], c["modality_id"])].append(record)
    turnaround = [DailyTurnaround(day=day, site_id=site, modality_id=modality, cases=len(recs),
                                  records=records_pack(recs)) for (site, modality), recs in records.items()]

    # A case counts for a shift of its radiologist when it was assigned between the shift's start and end
    # (the live query's rule), whatever the shift's line.
    assigned = [c for c in cases if c["assigned_at"] is not None and c["assigned_to_id"] is not None]
    loads: dict[tuple[Any, ...], int] = defaultdict(int)
    if assigned:
        shifts: dict[int, list[tuple[int, dt.datetime, dt.datetime]]] = defaultdict(list)
        for pk, rad, s_start, s_end in Shift.objects.filter(
                radiologist_id__in={c["assigned_to_id"] for c in assigned},
                start__lte=max(c["assigned_at"] for c in assigned),
                end__gt=min(c["assigned_at"] for c in assigned)).values_list("pk", "radiologist_id", "start", "end"):
            shifts[rad].append((pk, s_start, s_end))
        for c in assigned:
            for pk, s_start, s_end in shifts.get(c["assigned_to_id"], ()):
                if s_start <= c["assigned_at"] < s_end:
                    loads[(c["site_id"], c["modality_id"], c["assigned_line_id"], pk)] += 1
    shift_rows = [DailyShiftLoad(day=day, site_id=s, modality_id=m, line_id=ln, shift_id=pk, cases=n)
                  for (s, m, ln, pk), n in loads.items()]

    by_case = {c["pk"]: c for c in cases}
    events: dict[tuple[Any, ...], int] = defaultdict(int)
    if cases:
        for case_id, kind, actor_id in (CaseEvent.objects.filter(case__requested_at__gte=start,
                                                                 case__requested_at__lt=end, kind__in=EVENT_KINDS)
                                        .values_list("case_id", "kind", "actor_id")):
            c = by_case[case_id]
            events[(c["site_id"], c["modality_id"], c["assigned_line_id"], kind, actor_id)] += 1
    event_rows = [DailyCaseEventCount(day=day, site_id=s, modality_id=m, line_id=ln, kind=k, actor_id=a, events=n)
                  for (s, m, ln, k, a), n in events.items()]
    return list(counts.values()), turnaround, shift_rows, event_rows, len(cases)


def _interpretation_hour_rows(day: dt.date) -> list[DailyInterpretationHours]:
    """The reports signed during one Paris day, per (site, modality, line) and hour of signature."""
    from apps.worklist.models import Case

    start, end = paris_day_bounds(day)
    rows: dict[tuple[Any, ...], DailyInterpretationHours] = {}
    for site_id, modality_id, line_id, signed_at in (Case.objects.filter(signed_at__gte=start, signed_at__lt=end)
                                                    .order_by().values_list("site_id", "modality_id",
                                                                            "assigned_line_id", "signed_at")):
        row = rows.get((site_id, modality_id, line_id))
        if row is None:
            row = rows[(site_id, modality_id, line_id)] = DailyInterpretationHours(
                day=day, site_id=site_id, modality_id=modality_id, line_id=line_id)
        hour = f"h{signed_at.astimezone(PARIS).hour:02d}"  # type: ignore[union-attr]
        setattr(row, hour, getattr(row, hour) + 1)
    return list(rows.values())


def dashboard_day_aggregate(*, day: dt.date, today: dt.date | None = None) -> DashboardAggregateDay:
    """Recompute the aggregates of one closed Paris day, wholesale, in one transaction."""
    if day >= (today or paris_today()):
        raise ValueError(f"{day} is not closed yet: only days before today (Europe/Paris) are aggregated")
    with transaction.atomic():
        # The marker row is locked first: a concurrent rebuild of the same day waits here, then redoes
        # the day from scratch, instead of interleaving its deletes and inserts with ours.
        marker, _created = DashboardAggregateDay.objects.select_for_update().get_or_create(
            day=day, defaults={"built_at": timezone.now()})
        counts, turnaround, shift_rows, event_rows, n = _day_rows(day)
        tables: tuple[tuple[Any, list[Any]], ...] = (
            (DailyCaseAggregate, counts), (DailyTurnaround, turnaround),
            (DailyShiftLoad, shift_rows), (DailyCaseEventCount, event_rows),
            (DailyInterpretationHours, _interpretation_hour_rows(day)))
        for model, rows in tables:
            model.objects.filter(day=day).delete()
            model.objects.bulk_create(rows, batch_size=2000)
        marker.built_at = timezone.now()
        marker.cases = n
        marker.save(update_fields=["built_at", "cases"])
    return marker


def dashboard_aggregates_rebuild(*, since: dt.date | None = None, until: dt.date | None = None,
                                 today: dt.date | None = None) -> list[dt.date]:
    """Recompute every closed day from ``since`` (default: the day of the first case) to ``until``
    (inclusive, default: yesterday). Returns the days recomputed."""
    from apps.worklist.models import Case

    today = today or paris_today()
    last = min(until or today - dt.timedelta(days=1), today - dt.timedelta(days=1))
    if since is None:
        first = Case.objects.order_by("requested_at").values_list("requested_at", flat=True).first()
        if first is None:
            return []
        since = first.astimezone(PARIS).date()
    days = []
    day = since
    while day <= last:
        dashboard_day_aggregate(day=day, today=today)
        days.append(day)
        day += dt.timedelta(days=1)
    if len(days) > REFRESH_DAYS and connection.vendor == "postgresql":
        # Freshly filled tables have no statistics until autovacuum passes: the planner would take a year
        # of rows for a few dozen and sort them on disk (measured: 165 ms instead of 60 for a year's
        # activity).
        with connection.cursor() as cur:
            for model in (DailyCaseAggregate, DailyTurnaround, DailyShiftLoad, DailyCaseEventCount,
                          DailyInterpretationHours, DashboardAggregateDay):
                cur.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return days


def dashboard_aggregates_refresh(*, today: dt.date | None = None, days: int = REFRESH_DAYS) -> list[dt.date]:
    """The nightly recompute: the last ``days`` closed days, plus any older aggregated day one of whose
    cases was saved after the day was built (a backfilled case, a late report on an old request) during
    the same look-back. Idempotent."""
    from apps.worklist.models import Case

    today = today or paris_today()
    recent = [today - dt.timedelta(days=i) for i in range(days, 0, -1)]
    window_start = paris_day_bounds(recent[0])[0]
    built = dict(DashboardAggregateDay.objects.filter(day__lt=recent[0]).values_list("day", "built_at"))
    stale = set()
    for requested_at, updated_at in (Case.objects.filter(requested_at__lt=window_start,
                                                         updated_at__gte=window_start)
                                     .values_list("requested_at", "updated_at")):
        day = requested_at.astimezone(PARIS).date()
        if day in built and updated_at > built[day]:
            stale.add(day)
    for day in (*sorted(stale), *recent):
        dashboard_day_aggregate(day=day, today=today)
    return [*sorted(stale), *recent]
