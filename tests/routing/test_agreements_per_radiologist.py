"""Agreement first, per radiologist (issue 18, points 2 and 3).

A pooled line is usable for a site when one of its holders has an agreement in force with it, but a
radiologist is offered the site's case only when their own employing establishment has one; the coordinator's
alert gives every target and why it was skipped, not only the conclusion."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.regions.models import Agreement, AgreementStatus
from apps.rosters.models import OnCallLine, Shift
from apps.routing.models import Notification, RoutingDecision
from apps.routing.rules import ASSIGNED, COORDINATOR, Candidate, CaseFacts, RuleFacts, TargetFacts, decide
from apps.routing.selectors import on_duty
from apps.routing.services import assignment_decline, case_escalate, case_route
from apps.traceability.models import TechnicalIncident
from apps.worklist.models import AssignmentState
from tests.factories.worklist import make_case

SITE, TOURS, BOURGES, TELERAD = 10, 20, 30, 40
POOL, PROVIDER = 100, 200
ALL = frozenset({"weeknight", "weekend", "holiday", "day"})
RULE = RuleFacts(1, "South pool then provider", "site", SITE, None, frozenset({"CT"}), ALL,
                 (TargetFacts(POOL, "Pool South", "pooled", True, True, True),
                  TargetFacts(PROVIDER, "Telerad", "provider", True, True, True)))


def facts(*partners: int) -> CaseFacts:
    return CaseFacts(1, SITE, frozenset(), "CT", True, "urgent", "weeknight", "",
                     frozenset(partners) | {SITE})


def cand(rid: int, line: int, employer: int, name: str, role: str = "primary", load: float = 0.0,
         flags: frozenset[str] = frozenset()) -> Candidate:
    return Candidate(rid, f"Dr {rid}", line, role, load, frozenset(), frozenset({employer}), name, flags)


# Bourges's radiologist has the least load: before, he was chosen although Bourges's agreement had expired.
DUTY = {POOL: (cand(1, POOL, TOURS, "CHU Tours", load=3.0), cand(2, POOL, BOURGES, "CH Bourges", load=0.0),
               cand(3, POOL, BOURGES, "CH Bourges", "backup")),
        PROVIDER: (cand(4, PROVIDER, TELERAD, "Télérad"),)}


@pytest.mark.parametrize("partners,level,expected", [
    ((TOURS, BOURGES, TELERAD), 0, 2),    # every employer has an agreement: least load wins
    ((TOURS, TELERAD), 0, 1),             # Bourges expired: its radiologists are never offered the case
    ((TOURS, TELERAD), 1, 4),             # next group: not Bourges's backup, the provider
    ((BOURGES, TELERAD), 0, 2),
    ((TELERAD,), 0, 4),                   # no pool holder: the line is skipped altogether
])
def test_each_radiologist_needs_their_employer_agreement(partners, level, expected):
    d = decide(facts(*partners), RULE, DUTY, level=level)
    assert d.outcome == ASSIGNED and d.radiologist_id == expected


def test_every_skipped_target_is_a_reason():
    d = decide(facts(TOURS), RULE, {POOL: DUTY[POOL][1:]})
    assert d.outcome == COORDINATOR
    text = "\n".join(d.reasons)
    assert "Dr 2 (primary on Pool South) skipped: no agreement in force between CH Bourges" in text
    assert "Dr 3 (backup on Pool South) skipped" in text
    assert "nobody on duty on Telerad" in text
    assert "nobody on duty on the rule's targets" not in d.reasons[-1]  # someone was on duty, none could take it


def test_flagged_shift_is_never_offered():
    duty = {POOL: (cand(1, POOL, TOURS, "CHU Tours", flags=frozenset({"over_60"})),
                   cand(5, POOL, TOURS, "CHU Tours", load=9.0))}
    d = decide(facts(TOURS), RULE, duty)
    assert d.radiologist_id == 5 and any("breaks roster rules (over_60)" in r for r in d.reasons)


# --- On the demo region ----------------------------------------------------------------------------------


def _expire(demo, requesting: str, partner: str) -> None:
    yesterday = timezone.now().date() - dt.timedelta(days=1)
    Agreement.objects.filter(requesting=demo.establishments[requesting], partner=demo.establishments[partner]) \
        .update(status=AgreementStatus.EXPIRED, valid_until=yesterday)


def _pool_south_now(demo, *usernames_roles: tuple[str, str]) -> OnCallLine:
    """Replace who holds the southern pooled line right now."""
    now = timezone.now()
    line = OnCallLine.objects.get(region=demo.region, name__startswith="Ligne mutualisée Sud")
    Shift.objects.filter(line=line, start__lte=now, end__gt=now).delete()
    for username, role in usernames_roles:
        Shift.objects.create(line=line, radiologist=demo.users[username], role=role, kind="remote",
                             start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=6))
    return line


def test_expired_employer_never_offered_on_a_pooled_line(demo):
    _expire(demo, "vierzon", "bourges")
    _pool_south_now(demo, ("radio.vincent6", "primary"), ("radiologue", "backup"))  # vincent6: Bourges
    case = case_route(case_id=make_case(demo, urgency="urgent").pk)
    assert case.assigned_to == demo.users["radiologue"]
    decision = RoutingDecision.objects.get(case=case)
    assert any("skipped: no agreement in force between" in r and "Bourges" in r for r in decision.reasons)
    # Declined, escalated: the chain moves on, never to the Bourges radiologist.
    case = assignment_decline(case_id=case.pk, user=demo.users["radiologue"], reason="Occupée")
    offered = [case.assigned_to_id]
    for _ in range(4):
        case = case_escalate(case_id=case.pk, now=timezone.now() + dt.timedelta(hours=1))
        offered.append(case.assigned_to_id)
        if case.assignment_state == AssignmentState.COORDINATOR:
            break
    assert demo.users["radio.vincent6"].pk not in offered
    # Who is on duty for Vierzon leaves him out too.
    duty = on_duty(site_id=demo.establishments["vierzon"].pk, modality_code="CT", at=timezone.now())
    assert demo.users["radio.vincent6"].pk not in {d.radiologist_id for d in duty}


def test_coordinator_alert_gives_every_reason(demo):
    _expire(demo, "vierzon", "bourges")
    _pool_south_now(demo, ("radio.vincent6", "primary"), ("radio.david9", "backup"))  # both Bourges
    case = case_route(case_id=make_case(demo, modality_code="MR", exam="IRM", urgency="urgent").pk)
    assert case.assignment_state == AssignmentState.COORDINATOR
    incident = TechnicalIncident.objects.get(case=case)
    body = Notification.objects.filter(case=case, user=demo.users["coordinateur"]).first().body
    assert "no agreement in force between" in incident.summary  # the first skipped target, not the conclusion
    for text in ("\n".join(incident.details["reasons"]), body):
        assert "no agreement in force between" in text  # the pool's radiologists, each with why
        assert "does not cover this modality" in text    # the provider reads CT only
    assert "nobody on duty on the rule's targets" not in body


def test_expired_employer_cannot_claim_from_the_pooled_line(demo):
    from apps.core.errors import PermissionDeniedError
    from apps.worklist.models import Case
    from apps.worklist.services import case_claim

    _expire(demo, "vierzon", "bourges")
    line = _pool_south_now(demo, ("radio.vincent6", "primary"), ("radio.durand1", "backup"))
    case = make_case(demo, urgency="urgent", status="awaiting_reading")
    Case.objects.filter(pk=case.pk).update(assigned_line=line)  # on the line's queue, nobody's yet
    with pytest.raises(PermissionDeniedError, match="No agreement in force"):
        case_claim(case_id=case.pk, user=demo.users["radio.vincent6"])
    assert case_claim(case_id=case.pk, user=demo.users["radio.durand1"]).claimed_by == demo.users["radio.durand1"]
