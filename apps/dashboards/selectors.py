"""Indicators of the ARS steering dashboard.

Every panel is a function of a ``DashboardFilter`` (region, UTC period, optional territory, site,
modality and the establishment an administrator is scoped to) and returns ``Table`` objects: the same
rows feed the HTML tables, the charts and the CSV exports.

The period is split in two (``period_split``): the closed Paris days that ``apps.dashboards.services``
has aggregated (a ``DashboardAggregateDay`` marker) are read from the daily aggregates; the rest -- today,
a partial first or last day, days not aggregated yet -- is computed live from the cases. Both halves give
additive partial results (counts, per-shift counts, exact durations) that are summed, so a figure does not
depend on how much of the period was aggregated: ``use_aggregates=False`` computes everything live and
gives the same tables.

Live: group-by and counts run in the database; on PostgreSQL the turnaround percentiles are
``percentile_cont`` over ``GROUPING SETS`` (one scan for all breakdowns), on the embedded SQLite demo
the durations are fetched and the percentiles computed in Python. Aggregated: the turnaround durations
are stored exactly (``apps.dashboards.turnaround``) and the percentiles computed with numpy, with the
same interpolation.

Hours and weekdays are Europe/Paris (the users' clock), storage is UTC.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from dataclasses import dataclass, field, replace
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import ExtractIsoWeekDay

from apps.dashboards.models import (
    HOURS,
    DailyCaseAggregate,
    DailyCaseEventCount,
    DailyShiftLoad,
    DailyTurnaround,
    DashboardAggregateDay,
    RiskEntry,
    RiskStatus,
    TrainingSession,
    criticality_level,
)
from apps.dashboards.turnaround import (
    TIMESTAMP_FIELDS,
    case_record,
    records_pack,
    turnaround_rows,
)

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
EMERGENCY_URGENCIES = ("vital", "urgent")

# Stages of turnaround: (key, label, start field, end field).
STAGES: tuple[tuple[str, str, str, str], ...] = (
    ("request_validation", "request → validation", "requested_at", "validated_at"),
    ("images_assigned", "images complete → assigned", "images_complete_at", "assigned_at"),
    ("assigned_acknowledged", "assigned → acknowledged", "assigned_at", "acknowledged_at"),
    ("acknowledged_signed", "acknowledged → signed", "acknowledged_at", "signed_at"),
    ("request_signed", "request → signed report", "requested_at", "signed_at"),
)

# Regional targets per urgency, in minutes (p90 should stay under them). None: no target for that stage.
TURNAROUND_TARGET_MINUTES: dict[str, dict[str, float | None]] = {
    "vital": {"request_validation": 10, "images_assigned": 5, "assigned_acknowledged": 5,
              "acknowledged_signed": 30, "request_signed": 60},
    "urgent": {"request_validation": 30, "images_assigned": 10, "assigned_acknowledged": 15,
               "acknowledged_signed": 60, "request_signed": 180},
    "deferred": {"request_validation": 120, "images_assigned": 60, "assigned_acknowledged": 60,
                 "acknowledged_signed": 240, "request_signed": 720},
}


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


# ---------------------------------------------------------------------------------------------- scope


def _region_site_ids(f: DashboardFilter) -> list[int]:
    # The region's sites are resolved first (a few dozen ids): the year-long scans then filter on
    # site_id directly instead of joining establishments and territories for every case.
    sites = establishments_in_scope(replace(f, scope_establishment_id=None))
    return list(sites.values_list("pk", flat=True)) or [-1]


def _held_line_ids(f: DashboardFilter) -> list[int]:
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
                                                                         _held_line_ids(f)})
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


def _aggregate_scope_q(f: DashboardFilter, split: PeriodSplit, *, ignore_modality: bool = False,
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
        q &= Q(site_id=f.scope_establishment_id) | Q(line_id__in=_held_line_ids(f))
    return q


def _live_filters(f: DashboardFilter, split: PeriodSplit) -> list[DashboardFilter]:
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


# ------------------------------------------------------------------------------------------- activity


class _EpochHour(Func):
    """Hours since the Unix epoch (UTC): an integer bucket, cheaper to group by than a truncated timestamp."""

    output_field = IntegerField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="(date_part('epoch', %(expressions)s)::bigint / 3600)",
                           **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection,
                           template="(CAST(strftime('%%%%s', %(expressions)s) AS INTEGER) / 3600)", **extra)


def _paris_month_starts(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Start of each Paris calendar month touched by [start, end), as aware datetimes."""
    local = start.astimezone(PARIS)
    month = dt.datetime(local.year, local.month, 1, tzinfo=PARIS)
    out = []
    while month < end:
        out.append(month)
        month = dt.datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=PARIS)
    return out or [dt.datetime(local.year, local.month, 1, tzinfo=PARIS)]


def _activity_counts_live(f: DashboardFilter, months: list[dt.datetime]
                          ) -> tuple[list[dict[str, Any]], list[list[int]]]:
    month_index = Case(*[When(requested_at__lt=b, then=Value(i)) for i, b in enumerate(months[1:])],
                       default=Value(len(months) - 1), output_field=IntegerField())
    signed = Q(signed_at__isnull=False)
    groups = list(cases_in_scope(f, ignore_modality=True).annotate(month=month_index)
                  .values("site_id", "modality_id", "month").order_by()
                  .annotate(requests=Count("id"), interpretations=Count("id", filter=signed),
                            emergency=Count("id", filter=signed & Q(urgency__in=EMERGENCY_URGENCIES)),
                            non_emergency=Count("id", filter=signed & ~Q(urgency__in=EMERGENCY_URGENCIES))))
    # Counted per UTC hour in the database (cheap truncation, at most 24 x days buckets), then each bucket
    # placed on the Paris clock: per-row time-zone conversion costs more than the count itself.
    heat = (cases_in_scope(f).annotate(utc_hour=_EpochHour("requested_at"))
            .values("utc_hour").order_by().annotate(n=Count("id")))
    grid = [[0] * 24 for _ in range(7)]
    for row in heat:
        local = dt.datetime.fromtimestamp(row["utc_hour"] * 3600, tz=dt.UTC).astimezone(PARIS)
        grid[local.isoweekday() - 1][local.hour] += row["n"]
    return groups, grid


def _activity_counts_aggregated(f: DashboardFilter, split: PeriodSplit, months: list[dt.datetime]
                                ) -> tuple[list[dict[str, Any]], list[list[int]]]:
    month_index = Case(*[When(day__lt=b.date(), then=Value(i)) for i, b in enumerate(months[1:])],
                       default=Value(len(months) - 1), output_field=IntegerField())
    sums = (DailyCaseAggregate.objects.filter(_aggregate_scope_q(f, split, ignore_modality=True))
            .annotate(month=month_index).values("site_id", "modality_id", "month").order_by()
            .annotate(n_requests=Sum("requests"), n_interpretations=Sum("interpretations"),
                      n_emergency=Sum("emergency_interpretations")))
    groups = [{"site_id": g["site_id"], "modality_id": g["modality_id"], "month": g["month"],
               "requests": g["n_requests"], "interpretations": g["n_interpretations"],
               "emergency": g["n_emergency"], "non_emergency": g["n_interpretations"] - g["n_emergency"]}
              for g in sums]
    heat: Any = (DailyCaseAggregate.objects.filter(_aggregate_scope_q(f, split))
            .annotate(weekday=ExtractIsoWeekDay("day")).values("weekday").order_by()
            .annotate(**{f"h{h:02d}": Sum(f"requests_h{h:02d}") for h in HOURS}))
    grid = [[0] * 24 for _ in range(7)]
    for row in heat:
        for h in HOURS:
            grid[row["weekday"] - 1][h] += row[f"h{h:02d}"] or 0
    return groups, grid


def activity_panel(f: DashboardFilter, *, use_aggregates: bool = True) -> dict[str, Table]:
    months = _paris_month_starts(f.start, f.end)
    split = period_split(f, use_aggregates=use_aggregates)
    # Counts per (site, modality, month) -- a few hundred groups at most -- are then summed per site, per
    # modality and per site x month. The modality filter is applied to the groups so that the
    # CT/ultrasound watch still sees both modalities. Aggregated days and live ranges give groups of the
    # same shape; a group may appear once per source, the sums below add them up.
    parts = [_activity_counts_live(lf, months) for lf in _live_filters(f, split)]
    if split.day_runs:
        parts.append(_activity_counts_aggregated(f, split, months))
    groups = [g for part_groups, _grid in parts for g in part_groups]
    grid = [[sum(part[1][d][h] for part in parts) for h in range(24)] for d in range(7)]
    from apps.regions.models import Establishment

    names = dict(Establishment.objects.filter(pk__in={g["site_id"] for g in groups}).values_list("pk", "name"))
    counted = ("requests", "interpretations", "emergency", "non_emergency")
    site_totals: dict[str, list[int]] = {}
    modality_totals: dict[str, list[int]] = {}
    subst: dict[tuple[str, int], list[int]] = {}
    for g in groups:
        if g["modality_id"] in ("CT", "US"):
            cell = subst.setdefault((names[g["site_id"]], g["month"]), [0, 0])
            cell[0 if g["modality_id"] == "CT" else 1] += g["requests"]
        if f.modality and g["modality_id"] != f.modality:
            continue
        for totals, key in ((site_totals, names[g["site_id"]]), (modality_totals, g["modality_id"])):
            acc = totals.setdefault(key, [0, 0, 0, 0])
            for i, c in enumerate(counted):
                acc[i] += g[c]
    per_site = [{"site__name": k, **dict(zip(counted, v, strict=True))} for k, v in sorted(site_totals.items())]
    per_modality = [{"modality_id": k, **dict(zip(counted, v, strict=True))}
                    for k, v in sorted(modality_totals.items())]
    substitution: list[dict[str, Any]] = [{"site__name": k[0], "month": k[1], "ct": v[0], "us": v[1]}
                                          for k, v in sorted(subst.items())]
    return {
        "activity_sites": Table(
            "activity_sites", "Interpretations per site",
            ("site", "requests", "interpretations", "emergency", "non_emergency"),
            tuple((r["site__name"], r["requests"], r["interpretations"], r["emergency"], r["non_emergency"])
                  for r in per_site),
            ("Interpretations are signed reports; emergency = vital or urgent requests.",)),
        "activity_modalities": Table(
            "activity_modalities", "Requests and interpretations per modality",
            ("modality", "requests", "interpretations"),
            tuple((r["modality_id"], r["requests"], r["interpretations"]) for r in per_modality)),
        "activity_heatmap": Table(
            "activity_heatmap", "Requests by weekday and hour (Europe/Paris)",
            ("weekday", *[f"{h:02d}h" for h in range(24)]),
            tuple((day, *grid[i]) for i, day in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))),
        ),
        "activity_substitution": Table(
            "activity_substitution", "CT vs ultrasound requests per site and month (substitution watch)",
            ("site", "month", "ct_requests", "us_requests", "ct_per_us"),
            tuple((r["site__name"], months[r["month"]].strftime("%Y-%m"), r["ct"], r["us"],
                   round(r["ct"] / r["us"], 2) if r["us"] else None) for r in substitution)),
    }


# ----------------------------------------------------------------------------------------- turnaround


def _minutes(value: float | None) -> float | None:
    return None if value is None else round(value / 60.0, 1)


def _percentile(sorted_values: list[float], p: float) -> float | None:
    """Linear interpolation, as PostgreSQL percentile_cont."""
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


_DIMENSIONS = (("site", "site_id"), ("modality", "modality_id"), ("line", "assigned_line_id"),
               ("urgency", "urgency"))


def _turnaround_rows_postgresql(cases: QuerySet[Any]) -> list[dict[str, Any]]:
    fields = ["site_id", "modality_id", "assigned_line_id", "urgency"] + sorted(
        {s[2] for s in STAGES} | {s[3] for s in STAGES})
    inner_sql, params = cases.values(*fields).order_by().query.sql_with_params()
    aggs = []
    for key, _label, a, b in STAGES:
        # date_part gives double precision; EXTRACT would give numeric, several times slower to sort.
        d = f"date_part('epoch', t.{b} - t.{a})"
        cond = f"t.{a} IS NOT NULL AND t.{b} IS NOT NULL"
        aggs.append(f"COUNT(*) FILTER (WHERE {cond}) AS {key}_n")
        aggs.append(f"percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY {d}) FILTER (WHERE {cond}) "
                    f"AS {key}_pcts")
    dims = ", ".join(f"t.{col}" for _n, col in _DIMENSIONS)
    sets = ", ".join(f"(t.{col})" for _n, col in _DIMENSIONS)
    sql = (f"SELECT {dims}, GROUPING(t.site_id, t.modality_id, t.assigned_line_id, t.urgency) AS g, "
           f"{', '.join(aggs)} FROM ({inner_sql}) t GROUP BY GROUPING SETS ({sets}, ())")
    with connection.cursor() as cur:
        cur.execute(sql, params)
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _turnaround_rows_python(cases: QuerySet[Any]) -> list[dict[str, Any]]:
    """SQLite fallback (embedded demo only): same output as the PostgreSQL query."""
    fields = ["site_id", "modality_id", "assigned_line_id", "urgency"] + sorted(
        {s[2] for s in STAGES} | {s[3] for s in STAGES})
    groups: dict[tuple[str, Any], dict[str, list[float]]] = {}
    for row in cases.values(*fields).order_by().iterator():
        for dim, col in (*_DIMENSIONS, ("all", None)):
            bucket = groups.setdefault((dim, row[col] if col else None), {})
            for key, _label, a, b in STAGES:
                if row[a] and row[b]:
                    bucket.setdefault(key, []).append((row[b] - row[a]).total_seconds())
    out = []
    for (dim, value), stages in groups.items():
        r: dict[str, Any] = {col: None for _n, col in _DIMENSIONS}
        if dim != "all":
            r[dict(_DIMENSIONS)[dim]] = value
        r["_dim"] = dim
        for key, *_ in STAGES:
            vals = sorted(stages.get(key, []))
            r[f"{key}_n"], r[f"{key}_p50"], r[f"{key}_p90"] = (
                len(vals), _percentile(vals, 0.5), _percentile(vals, 0.9))
        out.append(r)
    return out


def _turnaround_rows_aggregated(f: DashboardFilter, split: PeriodSplit) -> list[dict[str, Any]]:
    """Aggregated days' stored durations plus the live ranges' durations, percentiles by numpy."""
    parts: list[tuple[Any, str, Any]] = list(
        DailyTurnaround.objects.filter(_aggregate_scope_q(f, split, ignore_establishment_scope=True)).values_list("site_id", "modality_id", "records")
        .order_by())
    for lf in _live_filters(f, split):
        live: dict[tuple[int, str], list[Any]] = {}
        for c in (cases_in_scope(lf).values("site_id", "modality_id", "urgency", "assigned_line_id", *TIMESTAMP_FIELDS)
                  .order_by().iterator()):
            record = case_record(c)
            if record is not None:
                live.setdefault((c["site_id"], c["modality_id"]), []).append(record)
        parts.extend((site, modality, records_pack(recs)) for (site, modality), recs in live.items())
    held = set(_held_line_ids(f)) if f.scope_establishment_id else None
    return turnaround_rows(parts, line_scope=held, scope_site_id=f.scope_establishment_id)


def turnaround_panel(f: DashboardFilter, *, use_aggregates: bool = True) -> dict[str, Table]:
    from apps.regions.models import Establishment
    from apps.rosters.models import OnCallLine

    split = period_split(f, use_aggregates=use_aggregates)
    cases = cases_in_scope(f)
    if split.day_runs:
        raw = _turnaround_rows_aggregated(f, split)
    elif connection.vendor == "postgresql":
        raw = _turnaround_rows_postgresql(cases)
        masks = {0b0111: "site", 0b1011: "modality", 0b1101: "line", 0b1110: "urgency", 0b1111: "all"}
        for r in raw:
            r["_dim"] = masks[r.pop("g")]
            for key, *_ in STAGES:
                pcts = r.pop(f"{key}_pcts") or [None, None]
                r[f"{key}_p50"], r[f"{key}_p90"] = pcts
    else:
        raw = _turnaround_rows_python(cases)
    sites = dict(Establishment.objects.filter(territory__region_id=f.region_id).values_list("pk", "name"))
    lines = {pk: (name, kind) for pk, name, kind in
             OnCallLine.objects.filter(region_id=f.region_id).values_list("pk", "name", "kind")}
    columns = ["group", "stage", "cases", "median_min", "p90_min", "target_min", "p90_within_target"]
    tables: dict[str, Table] = {}
    titles = {"site": "Turnaround per site", "modality": "Turnaround per modality",
              "line": "Turnaround per on-call line and provider", "urgency": "Turnaround per urgency vs target",
              "all": "Turnaround, all cases"}
    for dim in ("all", "urgency", "site", "modality", "line"):
        rows = []
        dim_rows = [r for r in raw if r["_dim"] == dim]
        col = dict(_DIMENSIONS).get(dim)
        for r in sorted(dim_rows, key=lambda x: str(x[col]) if col else ""):
            value: Any = r[col] if col else None
            if dim == "site":
                label = sites.get(value, str(value))
            elif dim == "line":
                label = (f"{lines[value][0]} ({lines[value][1]})" if value in lines else "(no line)")
            else:
                label = value or "all"
            for key, stage_label, *_ in STAGES:
                n = r[f"{key}_n"]
                if not n:
                    continue
                p90 = _minutes(r[f"{key}_p90"])
                target = TURNAROUND_TARGET_MINUTES.get(value, {}).get(key) if dim == "urgency" else None
                rows.append((label, stage_label, n, _minutes(r[f"{key}_p50"]), p90, target,
                             None if target is None or p90 is None else p90 <= target))
        tables[f"turnaround_{dim}"] = Table(f"turnaround_{dim}", titles[dim], tuple(columns), tuple(rows))
    return tables


# ----------------------------------------------------------------------------------------------- load


def _shift_case_counts_live(shifts: QuerySet[Any], cases: QuerySet[Any]) -> dict[int, int]:
    """Per shift: cases assigned to its radiologist between its start and end (shifts without any are
    left out)."""
    if connection.vendor == "postgresql":
        # A case belongs to a shift of its radiologist when assigned between the shift's start and end. A
        # plain range join would compare every case of a radiologist with every shift of theirs; instead
        # each shift is spread over the UTC days it touches and cases are hash-joined on (radiologist, day).
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
    for lf in _live_filters(f, split):
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
        q = _aggregate_scope_q(f, split)
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


# --------------------------------------------------------------------------------------------- actors


def actors_panel(f: DashboardFilter, *, use_aggregates: bool = True) -> dict[str, Table]:
    from apps.accounts.models import User
    from apps.regions.models import ImagingDevice

    est = establishments_in_scope(f)
    by_kind = (est.values("kind").order_by("kind")
               .annotate(total=Count("id"), operational=Count("id", filter=Q(active=True))))
    users = User.objects.filter(is_active=True).filter(
        Q(memberships__establishment__in=est.values("pk")) | Q(region_id=f.region_id)
        if not f.scope_establishment_id else Q(memberships__establishment_id=f.scope_establishment_id))
    by_role = (users.values("role").order_by("role").annotate(
        accounts=Count("id", distinct=True),
        active_in_period=Count("id", distinct=True, filter=Q(last_login__gte=f.start, last_login__lt=f.end))))
    split = period_split(f, use_aggregates=use_aggregates)
    used: dict[str, int] = {}
    sources = [cases_in_scope(lf).values("modality_id").order_by().annotate(n=Count("id"))
               for lf in _live_filters(f, split)]
    if split.day_runs:
        sources.append(DailyCaseAggregate.objects.filter(_aggregate_scope_q(f, split)).values("modality_id")
                       .order_by().annotate(n=Sum("requests")))
    for source in sources:
        for modality, n in source.values_list("modality_id", "n"):
            used[modality] = used.get(modality, 0) + n
    devices = dict(ImagingDevice.objects.filter(establishment__in=est.values("pk")).values("modality_id")
                   .order_by().annotate(n=Count("id")).values_list("modality_id", "n"))
    training = TrainingSession.objects.filter(region_id=f.region_id, date__gte=f.start.astimezone(PARIS).date(),
                                              date__lt=f.end.astimezone(PARIS).date())
    if f.scope_establishment_id:
        training = training.filter(establishment_id=f.scope_establishment_id)
    trained = training.values("profile").order_by("profile").annotate(sessions=Count("id"),
                                                                      people=Sum("people_trained"))
    return {
        "actors_establishments": Table(
            "actors_establishments", "Establishments in the mesh", ("kind", "total", "operational"),
            tuple((r["kind"], r["total"], r["operational"]) for r in by_kind)),
        "actors_users": Table(
            "actors_users", "Users per profile", ("role", "accounts", "logged_in_during_period"),
            tuple((r["role"] or "-", r["accounts"], r["active_in_period"]) for r in by_role)),
        "actors_modalities": Table(
            "actors_modalities", "Modalities in use", ("modality", "requests_in_period", "devices"),
            tuple((m, used.get(m, 0), devices.get(m, 0)) for m in sorted(set(used) | set(devices)))),
        "actors_training": Table(
            "actors_training", "People trained per profile", ("profile", "sessions", "people_trained"),
            tuple((r["profile"], r["sessions"], r["people"]) for r in trained)),
    }


# ------------------------------------------------------------------------------------------- coverage


def coverage_panel(f: DashboardFilter, *, now: dt.datetime) -> dict[str, Table]:
    """Tonight's and next week's uncovered stretches, from the roster's coverage report."""
    try:
        from apps.rosters.selectors import coverage_report
    except ImportError:
        return {"coverage_gaps": Table("coverage_gaps", "Coverage gaps", ("status",), (("unavailable",),),
                                       ("The roster coverage report is not available.",))}
    today = now.astimezone(PARIS).date()
    tonight_end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(12), tzinfo=PARIS)
    rows = []
    for week_start in (today, today + dt.timedelta(days=7)):
        report = coverage_report(region_id=f.region_id, week_start=week_start)
        for cell in report.cells:
            if f.site_id and cell.site_id != f.site_id:
                continue
            if f.scope_establishment_id and cell.site_id != f.scope_establishment_id:
                continue
            if f.modality and cell.modality != f.modality:
                continue
            for gap in cell.gaps:
                when = "tonight" if gap.start < tonight_end and gap.end > now else (
                    "this week" if week_start == today else "next week")
                rows.append((when, cell.site_name, cell.modality, cell.period_label,
                             gap.start.astimezone(PARIS).strftime("%Y-%m-%d %H:%M"),
                             gap.end.astimezone(PARIS).strftime("%Y-%m-%d %H:%M")))
    return {"coverage_gaps": Table(
        "coverage_gaps", "Coverage gaps (uncovered PDS stretches)",
        ("when", "site", "modality", "period", "gap_start", "gap_end"), tuple(rows))}


# ---------------------------------------------------------------------------------------------- risks


class _DateAddDays(Func):
    """date + n days (PostgreSQL: date + integer; SQLite: date() modifier)."""

    output_field = DateField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="(%(expressions)s)", arg_joiner=" + ", **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="date(%(expressions)s || ' days')",
                           arg_joiner=", '+' || ", **extra)


def risks_with_review(region_id: int, *, today: dt.date) -> QuerySet[RiskEntry]:
    return (RiskEntry.objects.filter(region_id=region_id)
            .annotate(next_review_on=_DateAddDays("last_review", "review_interval_days"))
            .annotate(overdue_flag=Case(When(Q(next_review_on__lt=today) & ~Q(status=RiskStatus.CLOSED), then=True),
                                        default=False, output_field=BooleanField()))
            .order_by("-criticality", "risk"))


def risks_panel(f: DashboardFilter, *, today: dt.date) -> dict[str, Table]:
    matrix_counts = {(r["impact"], r["probability"]): r["n"] for r in
                     RiskEntry.objects.filter(region_id=f.region_id).exclude(status=RiskStatus.CLOSED)
                     .values("impact", "probability").order_by().annotate(n=Count("id"))}
    matrix = tuple((f"impact {i}", *[matrix_counts.get((i, p), 0) for p in range(1, 5)]) for i in range(4, 0, -1))
    risks = risks_with_review(f.region_id, today=today).values(  # type: ignore[misc]
        "risk", "nature", "impact", "probability", "criticality", "preventive_action", "owner", "due_date",
        "status", "last_review", "next_review_on", "overdue_flag")
    return {
        "risks_matrix": Table("risks_matrix", "Criticality matrix (open risks)",
                              ("impact", "probability 1", "probability 2", "probability 3", "probability 4"),
                              matrix),
        "risks_register": Table(
            "risks_register", "Risk register",
            ("risk", "nature", "impact", "probability", "criticality", "level", "preventive_action", "owner",
             "due_date", "status", "last_review", "next_review", "review_overdue"),
            tuple((r["risk"], r["nature"], r["impact"], r["probability"], r["criticality"],
                   criticality_level(r["criticality"]), r["preventive_action"], r["owner"], r["due_date"],
                   r["status"], r["last_review"], r["next_review_on"], bool(r["overdue_flag"])) for r in risks)),
    }


PANELS = ("activity", "turnaround", "load", "actors", "coverage", "risks")


def dashboard_tables(f: DashboardFilter, *, now: dt.datetime, panels: tuple[str, ...] = PANELS,
                     use_aggregates: bool = True) -> dict[str, Table]:
    """The tables of the requested panels. ``use_aggregates=False`` computes every figure live from the
    cases (the reference the aggregates are tested against)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The planner would JIT-compile these year-long aggregations: compiling costs seconds, more
            # than the queries themselves (measured by benchmarks/dashboard.py). Only for this transaction.
            # Sorting a year of durations for the percentiles needs more than the default 4 MB of sort
            # memory, or PostgreSQL plans index-ordered scans and spills (1.5 s -> 1.0 s measured).
            with connection.cursor() as cur:
                cur.execute("SET LOCAL jit = off")
                cur.execute("SET LOCAL work_mem = '64MB'")
        return _tables(f, now=now, panels=panels, use_aggregates=use_aggregates)


def _tables(f: DashboardFilter, *, now: dt.datetime, panels: tuple[str, ...], use_aggregates: bool
            ) -> dict[str, Table]:
    out: dict[str, Table] = {}
    if "activity" in panels:
        out.update(activity_panel(f, use_aggregates=use_aggregates))
    if "turnaround" in panels:
        out.update(turnaround_panel(f, use_aggregates=use_aggregates))
    if "load" in panels:
        out.update(load_panel(f, use_aggregates=use_aggregates))
    if "actors" in panels:
        out.update(actors_panel(f, use_aggregates=use_aggregates))
    if "coverage" in panels:
        out.update(coverage_panel(f, now=now))
    if "risks" in panels:
        out.update(risks_panel(f, today=now.astimezone(PARIS).date()))
    return out
