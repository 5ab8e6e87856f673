"""Activity panel: requests and interpretations per site and modality, the weekly heatmap of interpretations
(signed reports, by the hour they were signed), CT vs ultrasound (every ultrasound request: typed, redirected or
received by DICOM without a request)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Case, Count, Func, IntegerField, Q, Sum, Value, When
from django.db.models.functions import ExtractIsoWeekDay

from apps.dashboards.models import HOURS, DailyCaseAggregate, DailyInterpretationHours
from apps.dashboards.selectors.scope import (
    EMERGENCY_URGENCIES,
    PARIS,
    DashboardFilter,
    PeriodSplit,
    Table,
    aggregate_scope_q,
    cases_in_scope,
    establishments_in_scope,
    live_filters,
    period_split,
    signed_scope_q,
)


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
    from apps.worklist.models import Case as CaseModel

    heat = (CaseModel.objects.filter(signed_scope_q(f)).annotate(utc_hour=_EpochHour("signed_at"))
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
    sums = (DailyCaseAggregate.objects.filter(aggregate_scope_q(f, split, ignore_modality=True))
            .annotate(month=month_index).values("site_id", "modality_id", "month").order_by()
            .annotate(n_requests=Sum("requests"), n_interpretations=Sum("interpretations"),
                      n_emergency=Sum("emergency_interpretations")))
    groups = [{"site_id": g["site_id"], "modality_id": g["modality_id"], "month": g["month"],
               "requests": g["n_requests"], "interpretations": g["n_interpretations"],
               "emergency": g["n_emergency"], "non_emergency": g["n_interpretations"] - g["n_emergency"]}
              for g in sums]
    heat: Any = (DailyInterpretationHours.objects.filter(aggregate_scope_q(f, split))
            .annotate(weekday=ExtractIsoWeekDay("day")).values("weekday").order_by()
            .annotate(**{f"h{h:02d}": Sum(f"h{h:02d}") for h in HOURS}))
    grid = [[0] * 24 for _ in range(7)]
    for row in heat:
        for h in HOURS:
            grid[row["weekday"] - 1][h] += row[f"h{h:02d}"] or 0
    return groups, grid


def _month_index(field: str, months: list[dt.datetime]) -> Case:
    return Case(*[When(**{f"{field}__lt": b}, then=Value(i)) for i, b in enumerate(months[1:])],
                default=Value(len(months) - 1), output_field=IntegerField())


def _ultrasound_outside_requests(f: DashboardFilter, months: list[dt.datetime]
                                 ) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
    """Per (site, month): ultrasound studies received by DICOM with no request (never a case, so never in the
    case counts), and ultrasound requests redirected to a referral centre (already among the case counts).
    Both live: a few rows, filtered on the ultrasound flag and modality."""
    from apps.studies.models import Study

    sites = list(establishments_in_scope(f).values_list("pk", flat=True)) or [-1]
    dicom = {(r["site_id"], r["month"]): r["n"] for r in
             Study.objects.filter(ultrasound=True, case__isnull=True, site_id__in=sites,
                                  first_received_at__gte=f.start, first_received_at__lt=f.end)
             .annotate(month=_month_index("first_received_at", months)).values("site_id", "month").order_by()
             .annotate(n=Count("id"))}
    redirected = {(r["site_id"], r["month"]): r["n"] for r in
                  cases_in_scope(f, ignore_modality=True).filter(modality_id="US", status="redirected")
                  .annotate(month=_month_index("requested_at", months)).values("site_id", "month").order_by()
                  .annotate(n=Count("id"))}
    return dicom, redirected


def activity_panel(f: DashboardFilter, *, use_aggregates: bool = True) -> dict[str, Table]:
    months = _paris_month_starts(f.start, f.end)
    split = period_split(f, use_aggregates=use_aggregates)
    # Counts per (site, modality, month) -- a few hundred groups at most -- are then summed per site, per
    # modality and per site x month. The modality filter is applied to the groups so that the
    # CT/ultrasound watch still sees both modalities. Aggregated days and live ranges give groups of the
    # same shape; a group may appear once per source, the sums below add them up.
    parts = [_activity_counts_live(lf, months) for lf in live_filters(f, split)]
    if split.day_runs:
        parts.append(_activity_counts_aggregated(f, split, months))
    groups = [g for part_groups, _grid in parts for g in part_groups]
    grid = [[sum(part[1][d][h] for part in parts) for h in range(24)] for d in range(7)]
    from apps.regions.models import Establishment

    us_dicom, us_redirected = _ultrasound_outside_requests(f, months)
    names = dict(Establishment.objects.filter(pk__in={g["site_id"] for g in groups} | {k[0] for k in us_dicom})
                 .values_list("pk", "name"))
    counted = ("requests", "interpretations", "emergency", "non_emergency")
    site_totals: dict[str, list[int]] = {}
    modality_totals: dict[str, list[int]] = {}
    # [CT requests, every ultrasound request, of which received by DICOM without a request, of which redirected]
    subst: dict[tuple[str, int], list[int]] = {}
    for g in groups:
        if g["modality_id"] in ("CT", "US"):
            cell = subst.setdefault((names[g["site_id"]], g["month"]), [0, 0, 0, 0])
            cell[0 if g["modality_id"] == "CT" else 1] += g["requests"]
        if f.modality and g["modality_id"] != f.modality:
            continue
        for totals, key in ((site_totals, names[g["site_id"]]), (modality_totals, g["modality_id"])):
            acc = totals.setdefault(key, [0, 0, 0, 0])
            for i, c in enumerate(counted):
                acc[i] += g[c]
    for (site_id, month), n in us_dicom.items():
        cell = subst.setdefault((names[site_id], month), [0, 0, 0, 0])
        cell[1] += n
        cell[2] += n
    for (site_id, month), n in us_redirected.items():
        subst.setdefault((names[site_id], month), [0, 0, 0, 0])[3] += n
    per_site = [{"site__name": k, **dict(zip(counted, v, strict=True))} for k, v in sorted(site_totals.items())]
    per_modality = [{"modality_id": k, **dict(zip(counted, v, strict=True))}
                    for k, v in sorted(modality_totals.items())]
    substitution: list[dict[str, Any]] = [{"site__name": k[0], "month": k[1], "ct": v[0], "us": v[1],
                                           "us_dicom": v[2], "us_redirected": v[3]}
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
            "activity_heatmap", "Interpretations by weekday and hour of signature (Europe/Paris)",
            ("weekday", *[f"{h:02d}h" for h in range(24)]),
            tuple((day, *grid[i]) for i, day in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))),
        ),
        "activity_substitution": Table(
            "activity_substitution", "CT vs ultrasound requests per site and month (substitution watch)",
            ("site", "month", "ct_requests", "us_requests", "ct_per_us", "us_received_by_dicom", "us_redirected"),
            tuple((r["site__name"], months[r["month"]].strftime("%Y-%m"), r["ct"], r["us"],
                   round(r["ct"] / r["us"], 2) if r["us"] else None, r["us_dicom"], r["us_redirected"])
                  for r in substitution),
            ("Ultrasound requests: typed into the platform (redirected ones included) and ultrasound studies "
             "received by DICOM without a request.",)),
    }
