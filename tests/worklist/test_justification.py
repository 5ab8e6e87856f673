"""Justification after acquisition (issue 18, point 8): images that arrive before the indication is validated
are recorded on the case (flag and event) and counted on the dashboard; an emergency is never held, a
deferred case waits for its validation."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.utils import timezone

from apps.dashboards.selectors import DashboardFilter, dashboard_tables
from apps.studies.models import Study, StudyStatus
from apps.worklist.justification import images_arrival
from apps.worklist.models import CaseEventKind, CaseStatus
from apps.worklist.services import ValidationDecision, case_attach_study, case_validate, study_match_manual
from tests.factories.worklist import make_case


@pytest.mark.parametrize(("status", "urgency", "new_status", "deviation", "held"), [
    ("accepted", "vital", "awaiting_reading", False, False),
    ("accepted", "deferred", "awaiting_reading", False, False),
    ("awaiting_validation", "vital", "awaiting_reading", True, False),
    ("awaiting_validation", "urgent", "awaiting_reading", True, False),
    ("info_requested", "urgent", "awaiting_reading", True, False),
    ("awaiting_validation", "deferred", "awaiting_validation", True, True),
    ("info_requested", "deferred", "info_requested", True, True),
    ("awaiting_reading", "urgent", "awaiting_reading", False, False),
    ("in_progress", "vital", "in_progress", False, False),
])
def test_images_arrival_rule(status: str, urgency: str, new_status: str, deviation: bool, held: bool) -> None:
    arrival = images_arrival(status=status, urgency=urgency)
    assert (arrival.status, arrival.deviation, arrival.reading_held) == (new_status, deviation, held)


def _study_for(case: Any, **fields: Any) -> Study:
    values: dict[str, Any] = {"modality": "CT", "num_series": 1, "num_instances": 40, "status": StudyStatus.COMPLETE,
                              "completed_at": timezone.now(), "accession_number": case.accession_number or "",
                              "patient_id": case.local_patient_id, **fields}
    return Study.objects.create(study_uid=f"1.2.826.0.1.3680043.9.{uuid.uuid4().int % 10**12}", site=case.site,
                                **values)


def test_urgent_images_before_validation_are_read_and_the_deviation_recorded(demo: Any) -> None:
    case = make_case(demo, urgency="urgent", accession_number="ACC-J1")
    assert case.status == CaseStatus.AWAITING_VALIDATION
    study = _study_for(case)
    attached = case_attach_study(study_id=study.pk)
    assert attached is not None and attached.pk == case.pk
    case.refresh_from_db()
    assert case.status == CaseStatus.AWAITING_READING  # never blocked for an emergency
    assert case.acquired_before_validation
    events = list(case.events.filter(kind=CaseEventKind.ACQUIRED_BEFORE_VALIDATION))
    assert len(events) == 1 and events[0].data["reading_held"] is False
    assert "justification after acquisition" in events[0].message


def test_deferred_images_before_validation_wait_for_the_validation(demo: Any) -> None:
    case = make_case(demo, urgency="deferred", accession_number="ACC-J2")
    study = _study_for(case)
    case_attach_study(study_id=study.pk)
    case.refresh_from_db()
    assert case.status == CaseStatus.AWAITING_VALIDATION and case.images_complete_at is not None
    assert case.acquired_before_validation
    validated = case_validate(case_id=case.pk, user=demo.users["radiologue"], decision=ValidationDecision.ACCEPT,
                              protocol="Without contrast")
    assert validated.status == CaseStatus.AWAITING_READING


def test_images_after_validation_are_no_deviation(demo: Any) -> None:
    case = make_case(demo, urgency="urgent", accession_number="ACC-J3")
    case_validate(case_id=case.pk, user=demo.users["radiologue"], decision=ValidationDecision.ACCEPT,
                  protocol="Without contrast")
    case_attach_study(study_id=_study_for(case).pk)
    case.refresh_from_db()
    assert case.status == CaseStatus.AWAITING_READING and not case.acquired_before_validation
    assert not case.events.filter(kind=CaseEventKind.ACQUIRED_BEFORE_VALIDATION).exists()


def test_manual_match_records_the_deviation(demo: Any) -> None:
    case = make_case(demo, urgency="vital")
    study = _study_for(case, accession_number="", patient_id="OTHER-IPP")
    study_match_manual(study_id=study.pk, case_id=case.pk, user=demo.users["urgentiste"])
    case.refresh_from_db()
    assert case.status == CaseStatus.AWAITING_READING and case.acquired_before_validation


def _justification_row(demo: Any) -> dict[str, Any]:
    now = timezone.now()
    f = DashboardFilter(region_id=demo.region.pk, start=now - dt.timedelta(days=1), end=now + dt.timedelta(hours=1))
    rows = dashboard_tables(f, now=now, panels=("turnaround",))["turnaround_justification"].as_dicts()
    return next((r for r in rows if r["site"] == demo.establishments["vierzon"].name),
                {"requests": 0, "acquired_before_validation": 0})


def test_dashboard_counts_justification_after_acquisition(demo: Any) -> None:
    before = _justification_row(demo)
    late = make_case(demo, urgency="urgent", accession_number="ACC-J5")
    case_attach_study(study_id=_study_for(late).pk)
    make_case(demo, urgency="urgent")  # still awaiting validation, no images: no deviation
    after = _justification_row(demo)
    assert after["requests"] == before["requests"] + 2
    assert after["acquired_before_validation"] == before["acquired_before_validation"] + 1
    assert after["share_pct"] == round(100.0 * after["acquired_before_validation"] / after["requests"], 1)
