"""Daily aggregates: the panels read from them give the figures of the live computation.

The data set spans the end of October 2025: summer time ends on Sunday 26 at 03:00 (02:00-03:00 happens
twice), a case just after midnight in Paris is still the previous day in UTC, and "today" (the 28th)
is not aggregated.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from django.core.management import call_command

from apps.dashboards.models import (
    DailyCaseAggregate,
    DailyCaseEventCount,
    DailyShiftLoad,
    DailyTurnaround,
    DashboardAggregateDay,
)
from apps.dashboards.selectors import PARIS, DashboardFilter, dashboard_tables, period_split
from apps.dashboards.services import (
    dashboard_aggregates_rebuild,
    dashboard_aggregates_refresh,
    dashboard_day_aggregate,
)
from tests.dashboards import test_selectors as hand
from tests.dashboards.test_selectors import data  # noqa: F401  (fixture)
from tests.factories.mesh import case_create_raw, line_create, mesh_create, paris, user_create

M = dt.timedelta(minutes=1)
TODAY = dt.date(2025, 10, 28)
NOW = paris(2025, 10, 28, 15)
PANELS = ("activity", "turnaround", "load", "actors")


def _stages(t0, v, i=None, a=None, k=None, s=None):
    return {"validated_at": t0 + v * M, "images_complete_at": t0 + i * M if i is not None else None,
            "assigned_at": t0 + a * M if a is not None else None,
            "acknowledged_at": t0 + k * M if k is not None else None,
            "signed_at": t0 + s * M if s is not None else None}


@pytest.fixture
def dst(db):
    from apps.rosters.models import Shift
    from apps.worklist.models import CaseEvent

    m = mesh_create("DST")
    r1 = user_create(m, "rad1", "radiologist", "P", birth_date=dt.date(1970, 1, 1))
    r2 = user_create(m, "rad2", "radiologist", "Q", birth_date=dt.date(1970, 1, 1))
    pool = line_create(m, "Pool", "pooled", "P")
    tele = line_create(m, "Tele", "provider", "Q")
    # Night shifts; the one of the 25th spans the DST change (15 hours instead of 14).
    s25 = Shift.objects.create(line=pool, radiologist=r1, start=paris(2025, 10, 25, 18, 30),
                               end=paris(2025, 10, 26, 8, 30))
    Shift.objects.create(line=tele, radiologist=r2, start=paris(2025, 10, 26, 18, 30), end=paris(2025, 10, 27, 8, 30))
    Shift.objects.create(line=pool, radiologist=r1, start=paris(2025, 10, 27, 18, 30), end=paris(2025, 10, 28, 8, 30))
    first_0230 = dt.datetime(2025, 10, 26, 0, 30, tzinfo=dt.UTC)  # 02:30 CEST
    second_0230 = dt.datetime(2025, 10, 26, 1, 30, tzinfo=dt.UTC)  # 02:30 CET, an hour later
    cases = {
        "fri_late": case_create_raw(m, "A", "CT", "vital", paris(2025, 10, 24, 23, 30), assigned_line=pool,
                                    assigned_to=r1, **_stages(paris(2025, 10, 24, 23, 30), 5, 20, 25, 28, 58)),
        "sat_early": case_create_raw(m, "B", "MR", "deferred", paris(2025, 10, 25, 0, 10),
                                     **_stages(paris(2025, 10, 25, 0, 10), 40)),
        "dst_first": case_create_raw(m, "A", "CT", "urgent", first_0230, assigned_line=pool, assigned_to=r1,
                                     escalation_level=1, **_stages(first_0230, 10, 30, 35, 45, 95)),
        "dst_second": case_create_raw(m, "B", "CT", "urgent", second_0230, assigned_line=tele, assigned_to=r2,
                                      overflowed=True, **_stages(second_0230, 20, 40, 42, 50, 70)),
        "us_sun": case_create_raw(m, "A", "US", "deferred", paris(2025, 10, 26, 11), status="redirected"),
        "sun_late": case_create_raw(m, "B", "CT", "vital", paris(2025, 10, 26, 23, 50), assigned_line=tele,
                                    assigned_to=r2, **_stages(paris(2025, 10, 26, 23, 50), 3, 13, 14, 16, 31)),
        # 00:30 in Paris on Monday the 27th is 23:30 UTC on Sunday: Paris day 27.
        "mon_early": case_create_raw(m, "A", "XR", "urgent", paris(2025, 10, 27, 0, 30), assigned_line=tele,
                                     assigned_to=r2, **_stages(paris(2025, 10, 27, 0, 30), 15, 25, 30, 32, 60)),
        "mon_open": case_create_raw(m, "A", "CT", "urgent", paris(2025, 10, 27, 21), assigned_line=pool,
                                    assigned_to=r1, assignment_state="coordinator",
                                    **_stages(paris(2025, 10, 27, 21), 12, 22, 23)),
        "today": case_create_raw(m, "B", "CT", "vital", paris(2025, 10, 28, 2), assigned_line=pool, assigned_to=r1,
                                 **_stages(paris(2025, 10, 28, 2), 4, 14, 15, 17, 40)),
    }
    CaseEvent.objects.create(case=cases["dst_first"], at=first_0230 + 34 * M, kind="declined", actor=r2, message="x")
    CaseEvent.objects.create(case=cases["dst_first"], at=first_0230 + 34 * M, kind="escalated", message="x")
    CaseEvent.objects.create(case=cases["today"], at=paris(2025, 10, 28, 2, 14), kind="declined", actor=r2,
                             message="x")
    f = DashboardFilter(region_id=m.region.pk, start=paris(2025, 10, 24), end=paris(2025, 10, 29))
    return m, f, cases, s25


def _tables(f, *, use_aggregates):
    return {k: t.rows for k, t in dashboard_tables(f, now=NOW, panels=PANELS, use_aggregates=use_aggregates).items()}


def _filters(m, f):
    return {
        "region": f,
        "territory": replace(f, territory_id=m.territories["T1"].pk),
        "site": replace(f, site_id=m.sites["B"].pk),
        "modality": replace(f, modality="CT"),
        "site and modality": replace(f, site_id=m.sites["A"].pk, modality="CT"),
        "pivot administrator": replace(f, scope_establishment_id=m.sites["P"].pk),
        "provider administrator": replace(f, scope_establishment_id=m.sites["Q"].pk, modality="CT"),
        "site administrator": replace(f, scope_establishment_id=m.sites["B"].pk),
        "partial first day": replace(f, start=paris(2025, 10, 25, 1)),
        "ends mid-day": replace(f, start=paris(2025, 10, 26), end=paris(2025, 10, 27, 12)),
    }


def test_period_split_reads_closed_aggregated_days_and_computes_the_rest_live(dst):
    m, f, _cases, _s25 = dst
    assert period_split(f).day_runs == ()  # nothing aggregated yet: all live
    dashboard_aggregates_rebuild(since=dt.date(2025, 10, 20), today=TODAY)
    split = period_split(f)
    assert split.day_runs == ((dt.date(2025, 10, 24), dt.date(2025, 10, 27)),)
    assert split.live == ((paris(2025, 10, 28), paris(2025, 10, 29)),)  # today
    partial = period_split(replace(f, start=paris(2025, 10, 25, 1), end=paris(2025, 10, 27, 12)))
    assert partial.day_runs == ((dt.date(2025, 10, 26), dt.date(2025, 10, 26)),)
    assert partial.live == ((paris(2025, 10, 25, 1), paris(2025, 10, 26)), (paris(2025, 10, 27), paris(2025, 10, 27, 12)))
    # The DST day is 25 hours long.
    sunday = DashboardAggregateDay.objects.get(day=dt.date(2025, 10, 26))
    assert sunday.cases == 4  # both 02:30, the ultrasound, 23:50 -- not the 00:30 of Monday


def test_aggregated_panels_equal_the_live_computation(dst):
    m, f, _cases, _s25 = dst
    live = {label: _tables(lf, use_aggregates=False) for label, lf in _filters(m, f).items()}
    dashboard_aggregates_rebuild(since=dt.date(2025, 10, 20), today=TODAY)
    for label, lf in _filters(m, f).items():
        assert period_split(lf).day_runs, label
        assert _tables(lf, use_aggregates=True) == live[label], label


def test_hand_computed_figures_across_the_dst_change(dst):
    m, f, _cases, _s25 = dst
    dashboard_aggregates_rebuild(since=dt.date(2025, 10, 20), today=TODAY)
    t = {k: v.as_dicts() for k, v in dashboard_tables(f, now=NOW, panels=PANELS).items()}
    # The heatmap counts interpretations at the hour they were signed (issue 18, point 11): the two 02:30
    # requests (summer and winter time) were signed at 03:05 and 03:40 winter time; the Friday 23:30 request
    # on Saturday 00:28, the Sunday 23:50 one on Monday 00:21; today's, live, at 02:40.
    heat = {row["weekday"]: row for row in t["activity_heatmap"]}
    assert heat["Sun"]["03h"] == 2 and heat["Sun"]["02h"] == 0
    assert heat["Sat"]["00h"] == 1 and heat["Fri"]["23h"] == 0 and heat["Mon"]["00h"] == 1
    assert heat["Mon"]["01h"] == 1 and heat["Tue"]["02h"] == 1  # today's case, live
    assert sum(v for row in t["activity_heatmap"] for k, v in row.items() if k != "weekday") == 6
    assert t["activity_sites"] == [
        {"site": "Site A DST", "requests": 5, "interpretations": 3, "emergency": 3, "non_emergency": 0},
        {"site": "Site B DST", "requests": 4, "interpretations": 3, "emergency": 3, "non_emergency": 0}]
    # request -> signed: 58, 95, 70, 31, 60, 40 minutes: median (58 + 60) / 2 = 59; p90 = 70 + 0.5 * 25.
    r = hand._stage(t["turnaround_all"], "all", "request → signed report")
    assert (r["cases"], r["median_min"], r["p90_min"]) == (6, 59.0, 82.5)
    # Shift of the 25th (18:30 CEST -> 08:30 CET, 15 hours): dst_first assigned at 02:05 CET.
    # Shift of the 27th: mon_open (21:23) and today's case (02:15 on the 28th, live): max 2.
    assert t["load_radiologists"][0] == {"radiologist": "Rad1 Test", "shifts": 2, "cases": 3, "cases_per_shift": 1.5,
                                         "max_cases_in_a_shift": 2}
    assert t["load_summary"][0]["escalated_to_coordinator"] == 1
    assert t["load_declines"] == [{"radiologist": "Rad2 Test", "declines": 2}]  # one aggregated, one live


def test_rebuild_is_idempotent(dst):
    m, f, _cases, _s25 = dst
    dashboard_aggregates_rebuild(since=dt.date(2025, 10, 20), today=TODAY)
    first = _tables(f, use_aggregates=True)
    counts = [model.objects.count() for model in (DailyCaseAggregate, DailyTurnaround, DailyShiftLoad,
                                                   DailyCaseEventCount, DashboardAggregateDay)]
    assert dashboard_aggregates_rebuild(since=dt.date(2025, 10, 20), today=TODAY) == [
        dt.date(2025, 10, 20) + dt.timedelta(days=i) for i in range(8)]
    dashboard_day_aggregate(day=dt.date(2025, 10, 26), today=TODAY)
    assert [model.objects.count() for model in (DailyCaseAggregate, DailyTurnaround, DailyShiftLoad,
                                                 DailyCaseEventCount, DashboardAggregateDay)] == counts
    assert _tables(f, use_aggregates=True) == first


def test_an_open_day_is_never_aggregated(dst):
    with pytest.raises(ValueError):
        dashboard_day_aggregate(day=TODAY, today=TODAY)
    assert dashboard_aggregates_rebuild(since=dt.date(2025, 10, 27), until=dt.date(2025, 11, 5), today=TODAY) == [
        dt.date(2025, 10, 27)]


def test_nightly_refresh_picks_up_late_changes_to_closed_days(dst):
    from apps.worklist.models import CaseEvent

    m, f, cases, _s25 = dst
    dashboard_aggregates_rebuild(since=dt.date(2025, 10, 10), today=TODAY)
    # The next night: Monday's open case is signed after midnight, an escalation is recorded late, and a
    # case of the 15th (outside the week recomputed every night) is backfilled.
    late = cases["mon_open"]
    late.acknowledged_at, late.signed_at = paris(2025, 10, 28, 0, 5), paris(2025, 10, 28, 0, 50)
    late.save(update_fields=["acknowledged_at", "signed_at", "updated_at"])
    CaseEvent.objects.create(case=late, at=paris(2025, 10, 28, 0, 2), kind="escalated", message="x")
    case_create_raw(m, "A", "MR", "urgent", paris(2025, 10, 15, 9), **_stages(paris(2025, 10, 15, 9), 30))
    whole = replace(f, start=paris(2025, 10, 10))
    live = _tables(whole, use_aggregates=False)
    assert _tables(whole, use_aggregates=True) != live  # stale until the nightly recompute
    days = dashboard_aggregates_refresh(today=TODAY + dt.timedelta(days=1))
    assert dt.date(2025, 10, 15) in days and dt.date(2025, 10, 28) in days and dt.date(2025, 10, 21) not in days
    assert _tables(whole, use_aggregates=True) == live
    assert DashboardAggregateDay.objects.get(day=dt.date(2025, 10, 15)).cases == 1


def test_refresh_recomputes_the_last_seven_closed_days(db):
    days = dashboard_aggregates_refresh(today=TODAY)
    assert days == [TODAY - dt.timedelta(days=i) for i in range(7, 0, -1)]
    assert set(DashboardAggregateDay.objects.values_list("day", flat=True)) == set(days)


def test_rebuild_command(dst, capsys):
    call_command("rebuild_dashboard_aggregates", "--since", "2025-10-24", "--until", "2025-10-27")
    assert "4 days recomputed (2025-10-24 to 2025-10-27)" in capsys.readouterr().out
    assert sorted(DashboardAggregateDay.objects.values_list("day", flat=True)) == [
        dt.date(2025, 10, 24) + dt.timedelta(days=i) for i in range(4)]


def test_nightly_task_is_scheduled_and_runs(db):
    from apps.dashboards import tasks

    entry = tasks.BEAT_SCHEDULE["dashboards-refresh-aggregates"]
    assert entry["task"] == tasks.refresh_aggregates.name == "dashboards.refresh_aggregates"
    assert tasks.refresh_aggregates() == 7
    yesterday = dt.datetime.now(PARIS).date() - dt.timedelta(days=1)
    assert DashboardAggregateDay.objects.filter(day=yesterday).exists()


@pytest.mark.parametrize("today", [dt.date(2025, 1, 11), dt.date(2025, 1, 31)])
@pytest.mark.parametrize("check", [hand.test_activity, hand.test_turnaround, hand.test_load, hand.test_actors,
                                   hand.test_filters_and_establishment_scope], ids=lambda c: c.__name__)
def test_hand_computed_indicators_hold_on_aggregates(data, check, today):  # noqa: F811
    """The indicator tests of test_selectors, with the closed days of their data set aggregated (partly:
    the 11th and 12th stay live; or entirely)."""
    m, f = data
    dashboard_aggregates_rebuild(since=dt.date(2025, 1, 1), today=today)
    assert period_split(f).day_runs
    check(data)
