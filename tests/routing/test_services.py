"""Routing services on the demo region: assignment, decline, hand-back, escalation chain, coordinator."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.routing.models import DecisionOutcome, Notification, RoutingDecision
from apps.routing.services import (
    assignment_acknowledge,
    assignment_decline,
    assignment_hand_back,
    case_escalate,
    case_route,
    escalations_run,
)
from apps.traceability.models import IncidentKind, TechnicalIncident
from apps.worklist.models import AssignmentState, Case, CaseEventKind, CaseStatus
from apps.worklist.services import CaseInput, case_create


def _case(demo, site="vierzon", modality="CT", urgency="urgent", status=None, **kw):
    data = CaseInput(patient_birth_name="DUPONT", patient_first_names="Jean", patient_sex="M",
                     patient_birth_date=dt.date(1950, 1, 1), clinical_question="AVC ?", modality_code=modality,
                     exam="Scanner cérébral", urgency=urgency, **kw)
    case, _ = case_create(site_id=demo.establishments[site].pk, data=data,
                          requested_by_id=demo.users["urgentiste"].pk)
    if status:
        Case.objects.filter(pk=case.pk).update(status=status)
    return case


def test_request_goes_to_radiologue_for_validation(demo):
    case = _case(demo)
    case = case_route(case_id=case.pk)
    assert case.assignment_state == AssignmentState.OFFERED
    assert case.assigned_to == demo.users["radiologue"]
    assert case.assigned_line.name.startswith("Ligne mutualisée Sud")
    assert case.escalation_due_at is not None and case.assigned_at is not None
    decision = RoutingDecision.objects.get(case=case)
    assert decision.outcome == DecisionOutcome.ASSIGNED and decision.purpose == "validation"
    assert decision.rule.name.startswith("Demi-région Sud") and decision.candidates and decision.reasons
    assert case.events.filter(kind=CaseEventKind.ASSIGNED).count() == 1
    assert Notification.objects.filter(user=demo.users["radiologue"], case=case, channel="in_app").exists()
    # Idempotent: routing again leaves it alone.
    case_route(case_id=case.pk)
    assert RoutingDecision.objects.filter(case=case).count() == 1


def test_acknowledge_decline_hand_back(demo):
    case = case_route(case_id=_case(demo).pk)
    radiologue = demo.users["radiologue"]
    with pytest.raises(ApplicationError):
        assignment_acknowledge(case_id=case.pk, user=demo.users["radio.durand1"])
    case = assignment_decline(case_id=case.pk, user=radiologue, reason="Déjà trois scanners en attente")
    assert case.assigned_to != radiologue and case.assignment_state == AssignmentState.OFFERED
    other = case.assigned_to
    case = assignment_acknowledge(case_id=case.pk, user=other)
    assert case.assignment_state == AssignmentState.ACKNOWLEDGED and case.acknowledged_at
    case = assignment_hand_back(case_id=case.pk, user=other, reason="Fin de garde")
    assert case.assigned_to not in (other, radiologue)
    assert case.assignment_state == AssignmentState.OFFERED


def test_escalation_chain_to_coordinator(demo):
    case = case_route(case_id=_case(demo, urgency="vital").pk)
    seen = [case.assigned_to_id]
    for _ in range(6):
        later = timezone.now() + dt.timedelta(hours=1)
        case = case_escalate(case_id=case.pk, now=later)
        if case.assignment_state == AssignmentState.COORDINATOR:
            break
        seen.append(case.assigned_to_id)
    assert case.assignment_state == AssignmentState.COORDINATOR
    lines = [d.line.kind for d in RoutingDecision.objects.filter(case=case, outcome="assigned")]
    assert lines[:2] == ["pooled", "pooled"] and "provider" in lines
    assert TechnicalIncident.objects.filter(case=case, kind=IncidentKind.ESCALATED_TO_COORDINATOR).exists()
    assert Notification.objects.filter(user=demo.users["coordinateur"], case=case).exists()
    assert escalations_run(now=timezone.now() + dt.timedelta(days=1)) == 0


def test_reading_after_images(demo):
    case = _case(demo, modality="MR", status=CaseStatus.AWAITING_READING)
    case = case_route(case_id=case.pk)
    assert RoutingDecision.objects.get(case=case).purpose == "reading"
