"""Coverage panel: tonight's and the coming weeks' uncovered on-call stretches, from the roster."""

from __future__ import annotations

import datetime as dt

from apps.dashboards.selectors.scope import PARIS, DashboardFilter, Table


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
