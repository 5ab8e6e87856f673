"""Load panel: cases per radiologist per shift, overflow to the provider, escalations and declines."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum

from apps.dashboards.models import DailyCaseAggregate, DailyCaseEventCount, DailyShiftLoad
from apps.dashboards.selectors.scope import (
    DashboardFilter,
    Table,
    aggregate_scope_q,
    case_scope_q,
    cases_in_scope,
    live_filters,
    period_split,
)


def _shift_case_counts_live(shifts: QuerySet[Any], cases: QuerySet[Any]) -> dict[int, int]:
    """Per shift: cases assigned to its radiologist between its start and end (shifts without any are
    left out)."""
    if connection.vendor == "postgresql":
        return _shift_case_counts_postgresql(shifts, cases)
    return _shift_case_counts_orm(shifts, cases)


def _shift_case_counts_postgresql(shifts: QuerySet[Any], cases: QuerySet[Any]) -> dict[int, int]:
    """A case belongs to a shift of its radiologist when assigned between the shift's start and end. A
    plain range join would compare every case of a radiologist with every shift of theirs; instead each
    shift is spread over the UTC days it touches and cases are hash-joined on (radiologist, day)."""
    shift_sql, shift_params = shifts.values("id", "radiologist_id", "start", "end").order_by() \
        .query.sql_with_params()
    case_sql, case_params = cases.filter(assigned_at__isnull=False, assigned_to_id__isnull=False) \
        .values("assigned_to_id", "assigned_at").order_by().query.sql_with_params()
    sql = f"""
        WITH sh AS ({shift_sql}),
        sd AS MATERIALIZED (SELECT sh.id, sh.radiologist_id, sh.start, sh."end", d::date AS day FROM sh,
               generate_series(date_trunc('day', sh.start AT TIME ZONE 'UTC'), sh."end" AT TIME ZONE 'UTC',
                               interval '1 day') AS d),
        c AS MATERIALIZED (SELECT x.assigned_to_id, x.assigned_at, (x.assigned_at AT TIME ZONE 'UTC')::date
                           AS day FROM ({case_sql}) x)
        SELECT sd.id, COUNT(*) FROM c JOIN sd ON sd.radiologist_id = c.assigned_to_id AND sd.day = c.day
        WHERE c.assigned_at >= sd.start AND c.assigned_at < sd."end" GROUP BY sd.id"""
    with connection.cursor() as cur:
        cur.execute(sql, [*shift_params, *case_params])
        return dict(cur.fetchall())


def _shift_case_counts_orm(shifts: QuerySet[Any], cases: QuerySet[Any]) -> dict[int, int]:
    """Portable (the embedded SQLite demo): one correlated count per shift."""
    per_shift_cases = (cases.filter(assigned_to_id=OuterRef("radiologist_id"), assigned_at__gte=OuterRef("start"),
                                    assigned_at__lt=OuterRef("end"))
                       .order_by().values("assigned_to_id").annotate(n=Count("id")).values("n"))
    return {pk: n for pk, n in shifts.annotate(n=Subquery(per_shift_cases, output_field=IntegerField()))
            .values_list("pk", "n") if n}


def _load_per_radiologist(shifts: QuerySet[Any], shift_cases: dict[int, int]) -> list[dict[str, Any]]:
    """Per radiologist: shifts worked, cases assigned to them during those shifts, max in one shift."""
    from apps.accounts.models import User

    per: dict[int, list[int]] = {}
    for pk, radiologist_id in shifts.values_list("pk", "radiologist_id").order_by():
        acc = per.setdefault(radiologist_id, [0, 0, 0])
        n = shift_cases.get(pk, 0)
        acc[0] += 1
        acc[1] += n
        acc[2] = max(acc[2], n)
    names = User.objects.filter(pk__in=per).values("pk", "first_name", "last_name")
    out = [{"radiologist_id": u["pk"], "radiologist__first_name": u["first_name"],
            "radiologist__last_name": u["last_name"], "shifts": per[u["pk"]][0], "cases": per[u["pk"]][1],
            "max_cases": per[u["pk"]][2]} for u in names]
    return sorted(out, key=lambda r: (r["radiologist__last_name"], r["radiologist_id"]))


_LOAD_TOTALS = ("assigned", "overflowed", "escalated", "to_coordinator")


def load_panel(f: DashboardFilter, *, use_aggregates: bool = True) -> dict[str, Table]:
    from apps.accounts.models import User
    from apps.rosters.models import Shift
    from apps.worklist.models import CaseEvent

    split = period_split(f, use_aggregates=use_aggregates)
    shifts = Shift.objects.filter(line__region_id=f.region_id, start__lt=f.end, end__gt=f.start)
    if f.scope_establishment_id:
        shifts = shifts.filter(line__holders=f.scope_establishment_id)
    shift_cases: dict[int, int] = {}
    totals = dict.fromkeys(_LOAD_TOTALS, 0)
    event_counts: dict[tuple[str, int | None], int] = {}
    for lf in live_filters(f, split):
        cases = cases_in_scope(lf)
        for pk, n in _shift_case_counts_live(shifts, cases).items():
            shift_cases[pk] = shift_cases.get(pk, 0) + n
        live_totals = cases.aggregate(
            assigned=Count("id", filter=Q(assigned_at__isnull=False)),
            overflowed=Count("id", filter=Q(overflowed=True)),
            escalated=Count("id", filter=Q(escalation_level__gt=0)),
            to_coordinator=Count("id", filter=Q(assignment_state="coordinator")),
        )
        for k in _LOAD_TOTALS:
            totals[k] += live_totals[k]
        # Events are few (declines, escalations): read them by kind and reach their case by primary key,
        # rather than semi-joining a year of cases.
        for kind, actor_id, n in (CaseEvent.objects.filter(case_scope_q(lf, prefix="case__"),
                                                           kind__in=("declined", "escalated"))
                                  .values("kind", "actor_id").order_by().annotate(n=Count("id"))
                                  .values_list("kind", "actor_id", "n")):
            event_counts[(kind, actor_id)] = event_counts.get((kind, actor_id), 0) + n
    if split.day_runs:
        q = aggregate_scope_q(f, split)
        for pk, n in (DailyShiftLoad.objects.filter(q, shift_id__in=shifts.values("pk")).values("shift_id")
                      .order_by().annotate(n=Sum("cases")).values_list("shift_id", "n")):
            shift_cases[pk] = shift_cases.get(pk, 0) + n
        aggregated = DailyCaseAggregate.objects.filter(q).aggregate(**{k: Sum(k) for k in _LOAD_TOTALS})
        for k in _LOAD_TOTALS:
            totals[k] += aggregated[k] or 0
        for kind, actor_id, n in (DailyCaseEventCount.objects.filter(q).values("kind", "actor_id").order_by()
                                  .annotate(n=Sum("events")).values_list("kind", "actor_id", "n")):
            event_counts[(kind, actor_id)] = event_counts.get((kind, actor_id), 0) + n
    per_radiologist = _load_per_radiologist(shifts, shift_cases)
    names: dict[int | None, tuple[Any, Any]] = {pk: (first, last) for pk, first, last in
             User.objects.filter(pk__in={a for _k, a in event_counts if a}).values_list("pk", "first_name",
                                                                                       "last_name")}
    by_actor = [{"kind": kind, "actor_id": actor_id, "actor__first_name": names.get(actor_id, (None, None))[0],
                 "actor__last_name": names.get(actor_id, (None, None))[1], "n": n}
                for (kind, actor_id), n in event_counts.items()]
    events = {"declines": sum(r["n"] for r in by_actor if r["kind"] == "declined"),
              "escalations": sum(r["n"] for r in by_actor if r["kind"] == "escalated")}
    declines_by = sorted((r for r in by_actor if r["kind"] == "declined"),
                         key=lambda r: (r["actor__last_name"] or "", r["actor_id"] or 0))
    assigned = totals["assigned"]
    share = round(100.0 * totals["overflowed"] / assigned, 1) if assigned else None
    return {
        "load_summary": Table(
            "load_summary", "Load, overflow and escalations",
            ("assigned_cases", "overflowed_to_provider", "overflow_share_pct", "cases_escalated",
             "escalation_events", "escalated_to_coordinator", "declines"),
            ((assigned, totals["overflowed"], share, totals["escalated"], events["escalations"],
              totals["to_coordinator"], events["declines"]),)),
        "load_radiologists": Table(
            "load_radiologists", "Cases per radiologist per shift",
            ("radiologist", "shifts", "cases", "cases_per_shift", "max_cases_in_a_shift"),
            tuple((f"{r['radiologist__first_name']} {r['radiologist__last_name']}".strip(), r["shifts"],
                   r["cases"] or 0, round((r["cases"] or 0) / r["shifts"], 2), r["max_cases"] or 0)
                  for r in per_radiologist)),
        "load_declines": Table(
            "load_declines", "Declines per radiologist", ("radiologist", "declines"),
            tuple((f"{r['actor__first_name']} {r['actor__last_name']}".strip() or "-", r["n"])
                  for r in declines_by)),
    }
