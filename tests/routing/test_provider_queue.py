"""A private provider as a destination in its own right (issue 18, point 14): rules as tables (queued within
hours and under capacity, else the next target with why), then on the demo region: routing to the queue,
the SLA escalation, agreements restricted to PDS hours or to modalities, the provider's radiologists seeing
and claiming from the queue, and the coordinator's view of it."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone

from apps.regions.models import Agreement
from apps.rosters.models import OnCallLine
from apps.routing.models import RoutingDecision, RoutingRule
from apps.routing.rules import (
    ASSIGNED,
    COORDINATOR,
    QUEUED,
    Candidate,
    CaseFacts,
    QueueFacts,
    RuleFacts,
    TargetFacts,
    decide,
)
from apps.routing.selectors import agreed_partner_ids
from apps.routing.services import (
    case_escalate,
    case_route,
    escalations_run,
    routing_decide,
    routing_rule_save,
)
from apps.worklist.models import AssignmentState, CaseEventKind, CaseStatus
from apps.worklist.selectors import radiologist_worklist
from apps.worklist.services import case_claim
from tests.factories.provider import hours_around, provider_queue_setup
from tests.factories.worklist import make_case

SITE, TELERAD, POOL = 10, 200, 100
ALL = frozenset({"weeknight", "weekend", "holiday", "day"})
OPEN = QueueFacts(True, "18:00-08:00, weekends, holidays", 4, 1, (10, 30, 120))


def rule(queue: QueueFacts | None) -> RuleFacts:
    return RuleFacts(1, "Provider first, then the pool", "site", SITE, None, frozenset({"CT"}), ALL,
                     (TargetFacts(TELERAD, "Télérad", "provider", True, True, True, queue=queue),
                      TargetFacts(POOL, "Pool", "pooled", True, True, True)))


FACTS = CaseFacts(1, SITE, frozenset(), "CT", True, "urgent", "weeknight", "", frozenset({SITE, 1, 2}))
DUTY = {POOL: (Candidate(7, "Dr Pool", POOL, "primary", 0.0, frozenset(), frozenset({1}), "CHU"),)}


@pytest.mark.parametrize("queue,purpose,outcome,why", [
    (OPEN, "reading", QUEUED, "queued for provider Télérad"),
    (QueueFacts(False, "20:00-08:00", 4, 0), "reading", ASSIGNED, "outside its contracted hours (20:00-08:00)"),
    (QueueFacts(True, "18:00-08:00", 4, 4), "reading", ASSIGNED, "at capacity (4 case(s) queued in the last hour"),
    (OPEN, "validation", ASSIGNED, "takes images to read, not indication validation"),
])
def test_queue_or_next_target_with_why(queue, purpose, outcome, why):
    d = decide(CaseFacts(**{**FACTS.__dict__, "purpose": purpose}), rule(queue), DUTY)
    assert d.outcome == outcome and any(why in r for r in d.reasons), d.reasons
    if outcome == QUEUED:
        assert d.line_id == TELERAD and d.radiologist_id is None and d.delay_minutes == 30  # urgent SLA
    else:
        assert d.radiologist_id == 7


def test_queue_skipped_and_nobody_else_goes_to_the_coordinator_with_the_reason():
    d = decide(FACTS, rule(QueueFacts(False, "20:00-08:00", 4, 0)), {})
    assert d.outcome == COORDINATOR
    assert any("outside its contracted hours" in r for r in d.reasons)


def test_queue_escalates_to_the_next_group():
    d = decide(FACTS, rule(OPEN), DUTY, level=1)
    assert d.outcome == ASSIGNED and d.radiologist_id == 7


# --- On the demo region --------------------------------------------------------------------------------------

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


@pytest.fixture
def provider(demo):
    return provider_queue_setup(demo)


def test_routed_to_the_queue_without_naming_anyone(demo, provider):
    case = case_route(case_id=make_case(demo, urgency="urgent", status="awaiting_reading").pk)
    assert case.assignment_state == AssignmentState.QUEUED
    assert case.assigned_line == provider.line and case.assigned_to is None
    assert case.escalation_due_at is not None
    assert 19 <= (case.escalation_due_at - case.assigned_at).total_seconds() / 60 <= 20
    assert case.events.filter(kind=CaseEventKind.QUEUED).exists()
    assert RoutingDecision.objects.get(case=case).outcome == QUEUED


def test_capacity_per_hour_then_the_next_target(demo, provider):
    cases = [case_route(case_id=make_case(demo, urgency="urgent", status="awaiting_reading").pk) for _ in range(3)]
    assert [c.assignment_state for c in cases] == ["queued", "queued", "offered"]
    assert cases[2].assigned_to == demo.users["radio.durand1"]
    reasons = RoutingDecision.objects.get(case=cases[2]).reasons
    assert any("at capacity (2 case(s) queued in the last hour, capacity 2)" in r for r in reasons)


def test_outside_contracted_hours_goes_to_the_next_target(demo, provider):
    for name, value in hours_around(timezone.now(), open_now=False).items():
        setattr(provider, name, value)
    provider.save()
    case = case_route(case_id=make_case(demo, urgency="urgent", status="awaiting_reading").pk)
    assert case.assigned_to == demo.users["radio.durand1"]
    assert any("outside its contracted hours" in r for r in RoutingDecision.objects.get(case=case).reasons)


def test_not_taken_within_the_sla_escalates(demo, provider):
    case = case_route(case_id=make_case(demo, urgency="urgent", status="awaiting_reading").pk)
    assert escalations_run(now=timezone.now() + dt.timedelta(minutes=5)) == 0
    escalations_run(now=timezone.now() + dt.timedelta(minutes=21))
    case.refresh_from_db()
    assert case.assignment_state == AssignmentState.OFFERED and case.assigned_to == demo.users["radio.durand1"]
    assert case.events.filter(kind=CaseEventKind.ESCALATED, message__startswith="Not taken by").exists()


def test_provider_radiologists_see_and_claim_from_the_queue(demo, provider):
    case = case_route(case_id=make_case(demo, urgency="urgent", status="awaiting_reading").pk)
    for username in ("radio.morel20", "radio.thomas21"):  # Télérad's, with no shift here: it dispatches itself
        assert radiologist_worklist(user=demo.users[username]).filter(pk=case.pk).exists()
    assert not radiologist_worklist(user=demo.users["radio.vincent6"]).filter(pk=case.pk).exists()
    case = case_claim(case_id=case.pk, user=demo.users["radio.morel20"])
    assert case.status == CaseStatus.IN_PROGRESS
    assert case.assignment_state == AssignmentState.ACKNOWLEDGED and case.assigned_to == demo.users["radio.morel20"]
    assert case.escalation_due_at is None
    assert case_escalate(case_id=case.pk, now=timezone.now() + dt.timedelta(hours=3)).assigned_to_id == \
        demo.users["radio.morel20"].pk  # taken: the SLA clock stopped
    assert not radiologist_worklist(user=demo.users["radio.thomas21"]).filter(pk=case.pk).exists()


def test_modality_restriction_of_the_provider_agreement(demo, provider):
    """Télérad's agreement covers CT only: an MR never goes to its queue (its line covers CT only too, so
    the agreement is what a line covering MR would still meet)."""
    provider.line.modalities.add("MR")
    routing_rule_save(rule=RoutingRule.objects.get(name="Vierzon CT: Télérad d'abord"), modality_codes=["CT", "MR"],
                      line_ids=[OnCallLine.objects.get(name__startswith="Ligne mutualisée Sud").pk])
    rule = RoutingRule.objects.get(name="Vierzon CT: Télérad d'abord")
    rule.targets.create(line=provider.line, order=0)  # as a rule written before the agreement changed
    case = make_case(demo, modality_code="MR", exam="IRM", urgency="urgent", status="awaiting_reading")
    decision, _ms = routing_decide(case, at=timezone.now())
    assert decision.outcome == ASSIGNED and decision.radiologist_id == demo.users["radio.durand1"].pk
    assert any("no agreement in force with Télérad" in r for r in decision.reasons), decision.reasons


def test_pds_only_agreement_enforced_in_regular_hours(demo, provider):
    vierzon = demo.establishments["vierzon"]
    Agreement.objects.filter(requesting=vierzon, partner=demo.establishments["telerad"]).update(pds_only=True)
    wednesday_noon = dt.datetime(2026, 12, 2, 12, 0, tzinfo=PARIS)
    wednesday_night = dt.datetime(2026, 12, 2, 23, 0, tzinfo=PARIS)
    telerad = demo.establishments["telerad"].pk
    assert telerad not in agreed_partner_ids(site_id=vierzon.pk, modality_code="CT", at=wednesday_noon,
                                             period_kind="day")
    assert telerad in agreed_partner_ids(site_id=vierzon.pk, modality_code="CT", at=wednesday_night,
                                         period_kind="weeknight")
    provider.weekday_start, provider.weekday_end = dt.time(0, 0), dt.time(23, 59)
    provider.save()
    case = make_case(demo, urgency="urgent", status="awaiting_reading")
    decision, _ms = routing_decide(case, at=wednesday_noon)
    assert decision.outcome != QUEUED
    assert any("no agreement in force with Télérad" in r for r in decision.reasons), decision.reasons
    decision, _ms = routing_decide(case, at=wednesday_night)
    assert decision.outcome == QUEUED
