"""Service levels per region, urgency and stage (issue 18, point 7): configurable in the admin, read by the
dashboard and the worklist's colours, and an acknowledged case not reported within its target alerts the
coordinator once per breach."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.dashboards.selectors import DashboardFilter, dashboard_tables
from apps.regions.models import ServiceLevel
from apps.regions.selectors import service_levels
from apps.routing.models import Notification
from apps.routing.sla import report_due_at, reports_overdue_alert
from apps.routing.tasks import BEAT_SCHEDULE
from apps.worklist.models import Case, CaseEventKind
from apps.worklist.templatetags import case_facts
from tests.factories.worklist import make_case

NOW = timezone.now()


def _set(demo: Any, urgency: str, **stages: int) -> None:
    ServiceLevel.objects.filter(region=demo.region, urgency=urgency).update(**stages)


def test_report_due_starts_when_acknowledged_and_images_are_in() -> None:
    ack = dt.datetime(2026, 1, 1, 2, 0, tzinfo=dt.UTC)
    assert report_due_at(acknowledged_at=ack, images_complete_at=None, target_minutes=60) is None
    assert report_due_at(acknowledged_at=ack, images_complete_at=ack - dt.timedelta(minutes=5),
                         target_minutes=60) == ack + dt.timedelta(minutes=60)
    later = ack + dt.timedelta(minutes=30)
    assert report_due_at(acknowledged_at=ack, images_complete_at=later, target_minutes=60) == later + \
        dt.timedelta(minutes=60)


@pytest.mark.django_db
def test_each_region_gets_the_default_targets_to_edit(demo: Any) -> None:
    assert service_levels(demo.region.pk)["urgent"]["acknowledged_signed"] == 60
    _set(demo, "urgent", acknowledged_signed=45)
    assert service_levels(demo.region.pk)["urgent"]["acknowledged_signed"] == 45


@pytest.mark.django_db
def test_dashboard_reads_the_region_targets(demo: Any) -> None:
    case = make_case(demo, urgency="urgent", status="reported")
    Case.objects.filter(pk=case.pk).update(signed_at=case.requested_at + dt.timedelta(minutes=20))
    _set(demo, "urgent", request_signed=7)
    f = DashboardFilter(region_id=demo.region.pk, start=NOW - dt.timedelta(days=1), end=NOW + dt.timedelta(hours=1))
    rows = dashboard_tables(f, now=NOW, panels=("turnaround",))["turnaround_urgency"].as_dicts()
    row = next(r for r in rows if r["group"] == "urgent" and r["stage"] == "request → signed report")
    assert row["target_min"] == 7 and row["p90_within_target"] is False


@pytest.mark.django_db
def test_worklist_colour_reads_the_region_target(demo: Any) -> None:
    case = make_case(demo, urgency="urgent")
    Case.objects.filter(pk=case.pk).update(requested_at=timezone.now() - dt.timedelta(minutes=20))
    case = Case.objects.select_related("site__territory").get(pk=case.pk)
    case_facts._targets.clear()
    assert case_facts.sla(case) == "ok"  # 20 min of 180
    _set(demo, "urgent", request_signed=15)
    case_facts._targets.clear()
    assert case_facts.sla(case) == "late"


def _acknowledged(demo: Any, *, minutes_ago: int, urgency: str = "urgent") -> Case:
    case = make_case(demo, urgency=urgency, status="awaiting_reading", assign_to="radiologue")
    at = timezone.now() - dt.timedelta(minutes=minutes_ago)
    Case.objects.filter(pk=case.pk).update(assignment_state="acknowledged", acknowledged_at=at,
                                           images_complete_at=at - dt.timedelta(minutes=1))
    return case


@pytest.mark.django_db
def test_overdue_report_alerts_the_coordinator_once(demo: Any) -> None:
    overdue = _acknowledged(demo, minutes_ago=61)
    on_time = _acknowledged(demo, minutes_ago=30)
    assert reports_overdue_alert() == 1
    events = list(overdue.events.filter(kind=CaseEventKind.ESCALATED, data__sla_stage="acknowledged_signed"))
    assert len(events) == 1 and "Report overdue" in events[0].message
    assert Notification.objects.filter(case=overdue, kind="sla", user__username="coordinateur").exists()
    assert not on_time.events.filter(kind=CaseEventKind.ESCALATED).exists()
    assert reports_overdue_alert() == 0  # one alert per breach
    assert overdue.events.filter(kind=CaseEventKind.ESCALATED).count() == 1


@pytest.mark.django_db
def test_the_region_target_decides_the_breach(demo: Any) -> None:
    case = _acknowledged(demo, minutes_ago=20, urgency="vital")
    _set(demo, "vital", acknowledged_signed=45)
    assert reports_overdue_alert() == 0
    _set(demo, "vital", acknowledged_signed=15)
    assert reports_overdue_alert() == 1
    assert case.events.filter(kind=CaseEventKind.ESCALATED, data__target_minutes=15).exists()


def test_the_beat_runs_the_overdue_check() -> None:
    assert BEAT_SCHEDULE["routing-reports-overdue"]["task"] == "routing.reports_overdue"


@pytest.mark.django_db
def test_region_admin_edits_the_service_levels(client: Any, demo: Any) -> None:
    client.force_login(demo.users["coordinateur"])
    page = client.get(reverse("admin:regions_region_change", args=[demo.region.pk]))
    assert page.status_code == 200 and "service_levels-TOTAL_FORMS" in page.content.decode()
