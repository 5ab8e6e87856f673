"""Each indicator against a small data set computed by hand (see the comments for the arithmetic)."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.dashboards.models import RiskEntry, TrainingSession
from apps.dashboards.selectors import DashboardFilter, dashboard_tables
from tests.factories.mesh import case_create_raw, line_create, mesh_create, paris, user_create

M = dt.timedelta(minutes=1)


@pytest.fixture
def data(db):
    from apps.regions.models import ImagingDevice
    from apps.rosters.models import Shift
    from apps.worklist.models import CaseEvent

    m = mesh_create()
    r1 = user_create(m, "rone", "radiologist", "P", birth_date=dt.date(1970, 1, 1))
    r2 = user_create(m, "rtwo", "radiologist", "P", birth_date=dt.date(1970, 1, 1))
    user_create(m, "doc", "emergency_physician", "A", last_login=paris(2025, 1, 8, 12))
    user_create(m, "coord", "ars_coordinator", region=m.region)
    l1 = line_create(m, "Pool", "pooled", "P")
    l2 = line_create(m, "Telerad", "provider", "Q")

    def stages(t0, v, i, a, k, s):
        out = {"validated_at": t0 + v * M if v is not None else None,
               "images_complete_at": t0 + i * M if i is not None else None,
               "assigned_at": t0 + a * M if a is not None else None,
               "acknowledged_at": t0 + k * M if k is not None else None,
               "signed_at": t0 + s * M if s is not None else None}
        return out

    t1, t2, t3, t4 = paris(2025, 1, 6, 22), paris(2025, 1, 6, 23, 30), paris(2025, 1, 11, 3, 15), paris(2025, 1, 11, 3, 45)
    c1 = case_create_raw(m, "A", "CT", "vital", t1, assigned_line=l1, assigned_to=r1, **stages(t1, 10, 30, 40, 45, 75))
    case_create_raw(m, "A", "CT", "urgent", t2, assigned_line=l1, assigned_to=r1,
                         **stages(t2, 20, 50, 55, 65, 125))
    case_create_raw(m, "B", "MR", "deferred", t3, **stages(t3, 60, None, None, None, None))
    c4 = case_create_raw(m, "B", "CT", "urgent", t4, assigned_line=l2, assigned_to=r2, overflowed=True,
                         escalation_level=1, **stages(t4, 30, 40, 60, 70, 100))
    case_create_raw(m, "A", "US", "deferred", paris(2025, 1, 7, 10), status="redirected")
    case_create_raw(m, "A", "CT", "urgent", paris(2025, 1, 20, 10), signed_at=paris(2025, 1, 20, 11))  # outside
    CaseEvent.objects.create(case=c4, at=t4 + 50 * M, kind="escalated", message="x")
    CaseEvent.objects.create(case=c1, at=t1 + 39 * M, kind="declined", actor=r2, message="x")
    Shift.objects.create(line=l1, radiologist=r1, start=paris(2025, 1, 6, 18, 30), end=paris(2025, 1, 7, 8, 30))
    Shift.objects.create(line=l1, radiologist=r1, start=paris(2025, 1, 8, 18, 30), end=paris(2025, 1, 9, 8, 30))
    Shift.objects.create(line=l2, radiologist=r2, start=paris(2025, 1, 10, 18, 30), end=paris(2025, 1, 11, 12))
    ImagingDevice.objects.create(establishment=m.sites["A"], modality_id="CT", name="Scanner A")
    for day, profile, n in ((8, "radiologist", 5), (9, "radiologist", 3), (9, "radiographer", 4)):
        TrainingSession.objects.create(region=m.region, date=dt.date(2025, 1, day), profile=profile, people_trained=n)
    TrainingSession.objects.create(region=m.region, date=dt.date(2024, 12, 1), profile="radiologist", people_trained=9)
    RiskEntry.objects.create(region=m.region, risk="Radiologist saturation", nature="human", impact=4, probability=3,
                             last_review=dt.date(2024, 10, 1), review_interval_days=90)
    RiskEntry.objects.create(region=m.region, risk="Network outage", nature="technical", impact=2, probability=2,
                             last_review=dt.date(2025, 1, 1), review_interval_days=90)
    RiskEntry.objects.create(region=m.region, risk="Old risk", nature="legal", impact=1, probability=1,
                             last_review=dt.date(2020, 1, 1), status="closed")
    f = DashboardFilter(region_id=m.region.pk, start=paris(2025, 1, 6), end=paris(2025, 1, 13))
    return m, f


NOW = paris(2025, 1, 10, 12)


def tables(f, *panels):
    return {k: t.as_dicts() for k, t in dashboard_tables(f, now=NOW, panels=panels).items()}


def test_activity(data):
    m, f = data
    t = tables(f, "activity")
    assert t["activity_sites"] == [
        {"site": "Site A TST", "requests": 3, "interpretations": 2, "emergency": 2, "non_emergency": 0},
        {"site": "Site B TST", "requests": 2, "interpretations": 1, "emergency": 1, "non_emergency": 0}]
    assert t["activity_modalities"] == [{"modality": "CT", "requests": 3, "interpretations": 3},
                                        {"modality": "MR", "requests": 1, "interpretations": 0},
                                        {"modality": "US", "requests": 1, "interpretations": 0}]
    # Interpretations by the hour of signature (not requests): Mon 23:15, Tue 01:35, Sat 05:25; the report
    # signed on the 20th is outside the period.
    heat = {row["weekday"]: row for row in t["activity_heatmap"]}
    assert heat["Mon"]["23h"] == 1 and heat["Tue"]["01h"] == 1 and heat["Sat"]["05h"] == 1
    assert heat["Mon"]["22h"] == 0 and heat["Sat"]["03h"] == 0
    assert sum(v for row in t["activity_heatmap"] for k, v in row.items() if k != "weekday") == 3
    assert t["activity_substitution"] == [
        {"site": "Site A TST", "month": "2025-01", "ct_requests": 2, "us_requests": 1, "ct_per_us": 2.0,
         "us_received_by_dicom": 0, "us_redirected": 1},
        {"site": "Site B TST", "month": "2025-01", "ct_requests": 1, "us_requests": 0, "ct_per_us": None,
         "us_received_by_dicom": 0, "us_redirected": 0}]


def _stage(rows, group, stage):
    return next(r for r in rows if r["group"] == group and r["stage"] == stage)


def test_turnaround(data):
    m, f = data
    t = tables(f, "turnaround")
    # request -> validation: 10, 20, 30, 60 min: median 25; p90 = 30 + 0.7 * 30 = 51.
    r = _stage(t["turnaround_all"], "all", "request → validation")
    assert (r["cases"], r["median_min"], r["p90_min"]) == (4, 25.0, 51.0)
    # request -> signed: 75, 100, 125: median 100; p90 = 100 + 0.8 * 25 = 120.
    r = _stage(t["turnaround_all"], "all", "request → signed report")
    assert (r["cases"], r["median_min"], r["p90_min"]) == (3, 100.0, 120.0)
    vital = _stage(t["turnaround_urgency"], "vital", "request → signed report")
    assert (vital["median_min"], vital["target_min"], vital["p90_within_target"]) == (75.0, 60, False)
    urgent = _stage(t["turnaround_urgency"], "urgent", "request → signed report")
    assert (urgent["median_min"], urgent["p90_min"], urgent["p90_within_target"]) == (112.5, 122.5, True)
    pool = _stage(t["turnaround_line"], "Pool (pooled)", "assigned → acknowledged")
    assert (pool["cases"], pool["median_min"]) == (2, 7.5)
    site_b = _stage(t["turnaround_site"], "Site B TST", "images complete → assigned")
    assert (site_b["cases"], site_b["median_min"]) == (1, 20.0)
    ct = _stage(t["turnaround_modality"], "CT", "acknowledged → signed")
    assert (ct["cases"], ct["median_min"]) == (3, 30.0)  # 30, 60, 30


def test_load(data):
    m, f = data
    t = tables(f, "load")
    assert t["load_summary"] == [{"assigned_cases": 3, "overflowed_to_provider": 1, "overflow_share_pct": 33.3,
                                  "cases_escalated": 1, "escalation_events": 1, "escalated_to_coordinator": 0,
                                  "declines": 1}]
    assert t["load_radiologists"] == [
        {"radiologist": "Rone Test", "shifts": 2, "cases": 2, "cases_per_shift": 1.0, "max_cases_in_a_shift": 2},
        {"radiologist": "Rtwo Test", "shifts": 1, "cases": 1, "cases_per_shift": 1.0, "max_cases_in_a_shift": 1}]
    assert t["load_declines"] == [{"radiologist": "Rtwo Test", "declines": 1}]


def test_actors(data):
    m, f = data
    t = tables(f, "actors")
    assert t["actors_establishments"] == [{"kind": "pivot", "total": 1, "operational": 1},
                                          {"kind": "provider", "total": 1, "operational": 0},
                                          {"kind": "requesting", "total": 2, "operational": 2}]
    assert t["actors_users"] == [{"role": "ars_coordinator", "accounts": 1, "logged_in_during_period": 0},
                                 {"role": "emergency_physician", "accounts": 1, "logged_in_during_period": 1},
                                 {"role": "radiologist", "accounts": 2, "logged_in_during_period": 0}]
    assert t["actors_modalities"] == [{"modality": "CT", "requests_in_period": 3, "devices": 1},
                                      {"modality": "MR", "requests_in_period": 1, "devices": 0},
                                      {"modality": "US", "requests_in_period": 1, "devices": 0}]
    assert t["actors_training"] == [{"profile": "radiographer", "sessions": 1, "people_trained": 4},
                                    {"profile": "radiologist", "sessions": 2, "people_trained": 8}]


def test_risks(data):
    m, f = data
    t = tables(f, "risks")
    matrix = {row["impact"]: row for row in t["risks_matrix"]}
    assert matrix["impact 4"]["probability 3"] == 1 and matrix["impact 2"]["probability 2"] == 1
    assert sum(v for row in t["risks_matrix"] for k, v in row.items() if k != "impact") == 2  # closed excluded
    reg = {r["risk"]: r for r in t["risks_register"]}
    assert reg["Radiologist saturation"]["criticality"] == 12 and reg["Radiologist saturation"]["level"] == "critical"
    assert reg["Radiologist saturation"]["review_overdue"] is True  # next review 2024-12-30 < 2025-01-10
    assert reg["Radiologist saturation"]["next_review"] == dt.date(2024, 12, 30)
    assert reg["Network outage"]["review_overdue"] is False and reg["Network outage"]["level"] == "moderate"
    assert reg["Old risk"]["review_overdue"] is False  # closed
    assert [r["risk"] for r in t["risks_register"]][0] == "Radiologist saturation"


def test_filters_and_establishment_scope(data):
    m, f = data
    from dataclasses import replace

    by_territory = tables(replace(f, territory_id=m.territories["T2"].pk), "activity")["activity_sites"]
    assert [r["site"] for r in by_territory] == ["Site B TST"]
    mr = tables(replace(f, modality="MR"), "activity")["activity_modalities"]
    assert mr == [{"modality": "MR", "requests": 1, "interpretations": 0}]
    # The pivot's administrator sees the cases read on the lines it holds (c1, c2), not the others.
    pivot = tables(replace(f, scope_establishment_id=m.sites["P"].pk), "activity", "load")
    assert pivot["activity_sites"] == [{"site": "Site A TST", "requests": 2, "interpretations": 2,
                                        "emergency": 2, "non_emergency": 0}]
    assert [r["radiologist"] for r in pivot["load_radiologists"]] == ["Rone Test"]
    site_b = tables(replace(f, scope_establishment_id=m.sites["B"].pk), "activity")["activity_sites"]
    assert [r["site"] for r in site_b] == ["Site B TST"]


def test_coverage_panel_never_fails(data):
    m, f = data
    t = dashboard_tables(f, now=NOW, panels=("coverage",))
    assert "coverage_gaps" in t
