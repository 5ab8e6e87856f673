"""Turnaround panel: p50/p90 of each stage per site, modality, on-call line and urgency, against targets."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import QuerySet

from apps.core.stats import percentile
from apps.dashboards.models import DailyTurnaround
from apps.dashboards.selectors.scope import (
    DashboardFilter,
    PeriodSplit,
    Table,
    aggregate_scope_q,
    cases_in_scope,
    held_line_ids,
    live_filters,
    period_split,
)
from apps.dashboards.turnaround import TIMESTAMP_FIELDS, case_record, records_pack, turnaround_rows
from apps.regions.models import SERVICE_LEVEL_DEFAULTS
from apps.regions.selectors import service_levels

# Stages of turnaround: (key, label, start field, end field).
STAGES: tuple[tuple[str, str, str, str], ...] = (
    ("request_validation", "request → validation", "requested_at", "validated_at"),
    ("images_assigned", "images complete → assigned", "images_complete_at", "assigned_at"),
    ("assigned_acknowledged", "assigned → acknowledged", "assigned_at", "acknowledged_at"),
    ("acknowledged_signed", "acknowledged → signed", "acknowledged_at", "signed_at"),
    ("request_signed", "request → signed report", "requested_at", "signed_at"),
)

# The default targets per urgency (minutes); the panel reads the region's own (apps.regions.selectors.service_levels).
TURNAROUND_TARGET_MINUTES = SERVICE_LEVEL_DEFAULTS


def _minutes(value: float | None) -> float | None:
    return None if value is None else round(value / 60.0, 1)


_DIMENSIONS = (("site", "site_id"), ("modality", "modality_id"), ("line", "assigned_line_id"),
               ("urgency", "urgency"))


def _turnaround_rows_postgresql(cases: QuerySet[Any]) -> list[dict[str, Any]]:
    """One scan for every breakdown (GROUPING SETS); rows as ``_turnaround_rows_python`` gives them."""
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
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    masks = {0b0111: "site", 0b1011: "modality", 0b1101: "line", 0b1110: "urgency", 0b1111: "all"}
    for r in rows:
        r["_dim"] = masks[r.pop("g")]
        for key, *_ in STAGES:
            pcts = r.pop(f"{key}_pcts") or [None, None]
            r[f"{key}_p50"], r[f"{key}_p90"] = pcts
    return rows


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
                (len(vals), percentile(vals, 0.5), percentile(vals, 0.9)) if vals else (0, None, None))
        out.append(r)
    return out


def _turnaround_rows_aggregated(f: DashboardFilter, split: PeriodSplit) -> list[dict[str, Any]]:
    """Aggregated days' stored durations plus the live ranges' durations, percentiles by numpy."""
    parts: list[tuple[Any, str, Any]] = list(
        DailyTurnaround.objects.filter(aggregate_scope_q(f, split, ignore_establishment_scope=True)).values_list("site_id", "modality_id", "records")
        .order_by())
    for lf in live_filters(f, split):
        live: dict[tuple[int, str], list[Any]] = {}
        for c in (cases_in_scope(lf).values("site_id", "modality_id", "urgency", "assigned_line_id", *TIMESTAMP_FIELDS)
                  .order_by().iterator()):
            record = case_record(c)
            if record is not None:
                live.setdefault((c["site_id"], c["modality_id"]), []).append(record)
        parts.extend((site, modality, records_pack(recs)) for (site, modality), recs in live.items())
    held = set(held_line_ids(f)) if f.scope_establishment_id else None
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
    else:
        raw = _turnaround_rows_python(cases)
    sites = dict(Establishment.objects.filter(territory__region_id=f.region_id).values_list("pk", "name"))
    lines = {pk: (name, kind) for pk, name, kind in
             OnCallLine.objects.filter(region_id=f.region_id).values_list("pk", "name", "kind")}
    targets = service_levels(f.region_id)
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
                target = targets.get(value, {}).get(key) if dim == "urgency" else None
                rows.append((label, stage_label, n, _minutes(r[f"{key}_p50"]), p90, target,
                             None if target is None or p90 is None else p90 <= target))
        tables[f"turnaround_{dim}"] = Table(f"turnaround_{dim}", titles[dim], tuple(columns), tuple(rows))
    return tables
