"""Alsace-Moselle by department (issue 18, point 5): one Grand Est region, two calendars.

Good Friday and 26 December are public holidays in Moselle (57), Bas-Rhin (67) and Haut-Rhin (68) only; the
region used to carry one switch for all its establishments."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.regions.models import Region
from apps.regions.selectors import site_calendar_spec
from apps.rosters.selectors import coverage_report
from apps.routing.selectors import case_facts_for
from tests.factories.mesh import mesh_create, paris

pytestmark = pytest.mark.django_db

GOOD_FRIDAY = dt.date(2026, 4, 3)


@pytest.fixture
def grand_est():
    from apps.routing import selectors

    selectors._cache.clear()  # calendars are cached per region and department for 30 s
    m = mesh_create("GES")
    strasbourg, nancy = m.sites["A"], m.sites["B"]
    strasbourg.department, nancy.department = "67", "54"
    strasbourg.save(update_fields=["department"])
    nancy.save(update_fields=["department"])
    return m


def test_region_has_no_alsace_moselle_switch():
    assert "alsace_moselle_holidays" not in {f.name for f in Region._meta.get_fields()}


def test_department_falls_back_to_the_finess_number(grand_est):
    site = grand_est.sites["P"]
    site.finess = "570000007"
    site.department = ""
    assert site.department_code == "57"
    site.department = "67"
    assert site.department_code == "67"


def test_routing_period_follows_the_site_department(grand_est):
    strasbourg, nancy = grand_est.sites["A"], grand_est.sites["B"]
    at = paris(2026, 4, 3, 10)  # Good Friday, 10:00: regular hours in Nancy, a holiday in Strasbourg
    facts = {site.pk: case_facts_for(site=site, modality_code="CT", eligible=True, urgency="urgent", at=at)
             for site in (strasbourg, nancy)}
    assert facts[strasbourg.pk].period_kind == "holiday"
    assert facts[nancy.pk].period_kind == "day"
    assert site_calendar_spec(strasbourg).department == "67"


def test_coverage_report_periods_follow_each_site_department(grand_est):
    report = coverage_report(region_id=grand_est.region.pk, week_start=GOOD_FRIDAY)
    good_friday_days = {c.site_id: c for c in report.cells
                        if c.start.astimezone(dt.UTC).date() == GOOD_FRIDAY and c.period_kind == "holiday"
                        and c.modality == "CT"}
    assert grand_est.sites["A"].pk in good_friday_days
    assert grand_est.sites["B"].pk not in good_friday_days
