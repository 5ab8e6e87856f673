"""Indicators of the ARS steering dashboard: ``dashboard_tables`` and the names every caller imports.

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

One module per panel (``activity``, ``turnaround``, ``load``, ``actors``, ``coverage``, ``risks``) over the
shared ground of ``scope`` (filter, table, cases in scope, period split).
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction

from apps.dashboards.selectors.activity import activity_panel
from apps.dashboards.selectors.actors import actors_panel
from apps.dashboards.selectors.coverage import coverage_panel
from apps.dashboards.selectors.load import load_panel
from apps.dashboards.selectors.practice import practice_tables
from apps.dashboards.selectors.risks import risks_panel, risks_with_review
from apps.dashboards.selectors.scope import (
    EMERGENCY_URGENCIES,
    PARIS,
    DashboardFilter,
    PeriodSplit,
    Table,
    case_scope_q,
    cases_in_scope,
    establishments_in_scope,
    paris_day_bounds,
    period_split,
)
from apps.dashboards.selectors.turnaround import STAGES, TURNAROUND_TARGET_MINUTES, turnaround_panel

__all__ = [
    "EMERGENCY_URGENCIES",
    "PANELS",
    "PARIS",
    "STAGES",
    "TURNAROUND_TARGET_MINUTES",
    "DashboardFilter",
    "PeriodSplit",
    "Table",
    "activity_panel",
    "actors_panel",
    "case_scope_q",
    "cases_in_scope",
    "coverage_panel",
    "dashboard_tables",
    "establishments_in_scope",
    "load_panel",
    "paris_day_bounds",
    "period_split",
    "risks_panel",
    "risks_with_review",
    "turnaround_panel",
]


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
        out.update(practice_tables(f))
    if "load" in panels:
        out.update(load_panel(f, use_aggregates=use_aggregates))
    if "actors" in panels:
        out.update(actors_panel(f, use_aggregates=use_aggregates))
    if "coverage" in panels:
        out.update(coverage_panel(f, now=now))
    if "risks" in panels:
        out.update(risks_panel(f, today=now.astimezone(PARIS).date()))
    return out
