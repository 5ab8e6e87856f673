"""The study hooks (apps.studies.events): filled by the apps above studies in their AppConfig.ready()."""

from __future__ import annotations

from typing import get_args

import pytest

from apps.routing.queue import ROUTE_TASK
from apps.studies import events
from apps.studies.services import study_routing_send
from apps.traceability.models import IncidentKind, Severity
from apps.traceability.services import incident_record
from apps.worklist.services import case_attach_complete_study, case_late_images_record


def test_each_hook_is_registered_once_the_apps_are_loaded() -> None:
    assert events.study_incident_subscribers().count(incident_record) == 1
    assert events.study_case_attacher() is case_attach_complete_study
    assert events.study_late_images_subscribers().count(case_late_images_record) == 1
    assert events.study_routing_task() == ROUTE_TASK == "routing.route_case"


def test_the_incident_kinds_and_severities_of_the_ingest_are_traceabilitys() -> None:
    assert set(get_args(events.StudyIncidentKind)) <= set(IncidentKind.values)
    assert set(get_args(events.IncidentSeverity)) <= set(Severity.values)


def test_registering_a_handler_again_keeps_one_and_a_second_attacher_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(events, "_incident_subscribers", list(events._incident_subscribers))
    events.study_incident_subscribe(incident_record)
    assert events.study_incident_subscribers().count(incident_record) == 1
    events.study_case_attach_register(case_attach_complete_study)  # the same one: harmless
    with pytest.raises(events.HookConflict):
        events.study_case_attach_register(lambda *, study_id: None)
    assert events.study_case_attacher() is case_attach_complete_study
    with pytest.raises(events.HookConflict):
        events.study_routing_task_register("somewhere.else")


def test_a_missing_attacher_or_routing_task_fails_loudly(monkeypatch) -> None:
    monkeypatch.setattr(events, "_case_attacher", [])
    monkeypatch.setattr(events, "_routing_task", [])
    with pytest.raises(events.HookMissing, match="attaches a complete study"):
        events.study_case_attach(study_id=1)
    # Raised, not taken for a broker outage (which would leave the study pending for ever, silently).
    with pytest.raises(events.HookMissing, match="routing task"):
        study_routing_send(study_id=1)


@pytest.mark.django_db
def test_a_handler_runs_in_the_callers_transaction_and_its_failure_rolls_the_change_back(monkeypatch) -> None:
    from django.db import transaction

    from apps.audit.models import AuditEntry
    from apps.studies.services import SenderDecision, association_refused_record

    seen: list[bool] = []

    def subscriber(**kw: object) -> None:
        seen.append(transaction.get_connection().in_atomic_block)
        raise RuntimeError("subscriber failed")

    monkeypatch.setattr(events, "_incident_subscribers", [subscriber])
    before = AuditEntry.objects.count()
    with pytest.raises(RuntimeError):
        association_refused_record(calling_ae="X", called_ae="PDS", address="10.0.0.1",
                                   decision=SenderDecision(False, "unknown calling AE title 'X'"))
    assert seen == [True]
    assert AuditEntry.objects.count() == before  # the security event went with the incident


def test_routing_registers_how_a_case_is_handed_to_it(monkeypatch) -> None:
    from apps.routing.queue import enqueue_routing
    from apps.worklist import events as case_events

    assert case_events._routing_requester == [enqueue_routing]
    monkeypatch.setattr(case_events, "_routing_requester", [])
    with pytest.raises(case_events.RoutingRequesterMissing):
        case_events.case_routing_request(1)
    asked: list[int] = []
    case_events.case_routing_requester_register(asked.append)
    case_events.case_routing_request(7)
    assert asked == [7]
