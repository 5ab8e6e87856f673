"""Writes of routing: assignment, escalation, acknowledgement, decline, hand-back, rule configuration.

Every function that changes a case locks its row (``select_for_update``) and
re-reads its state, so re-running a task is harmless and two workers racing
on one case give exactly one assignment; ``RoutingDecision(case, attempt)``
is unique as the last guard. The decision itself is the pure function
``apps.routing.rules.decide``; this module loads its facts, stores it with its
reasons, records the case event and the audit entry in the same transaction,
and notifies after commit.

A routing attempt that fails with an error (a database error, a bug) changes
nothing: its transaction is rolled back, the case stays unassigned and its
studies stay ``complete``. The failure is recorded apart (``routing_failure_record``:
one timeline event and one incident per run of failures) and the attempt is
retried by the task, then by the reconciler, which moves on to the other cases.

Locks follow docs/locking.md: the case row only (``of=("self",)``, never its site, modality or
radiologist), and no study row while the case is locked. The gateway's late-image path locks the study,
then its case; routing marking the studies ``routed`` inside its case-locked transaction was the other
order and deadlocked with it, so the studies are marked once the decision has committed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from typing import Any

from django.db import transaction
from django.db.models import Count, Exists, IntegerField, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from apps.accounts.models import Role, User
from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, NotFoundError, PermissionDeniedError
from apps.regions.models import Modality
from apps.regions.selectors import nearest_ultrasound_referrals
from apps.routing.deliveries import (  # noqa: F401  (re-exported: tasks and views import them from here)
    delivery_failed,
    notification_deliver,
    notification_mark_read,
    notifications_pending_redrive,
)
from apps.routing.failures import _failure_record_safely, routing_failure_record  # noqa: F401  (re-exported)
from apps.routing.models import (
    DecisionOutcome,
    Purpose,
    RoutingDecision,
    RoutingRule,
    validate_rule_targets,
)
from apps.routing.notifiers import notification_create
from apps.routing.provider_queues import case_queue, rule_with_queues
from apps.routing.queue import enqueue_reoffer
from apps.routing.rules import ASSIGNED, COORDINATOR, QUEUED, Decision, decide, match_rule
from apps.routing.selectors import case_facts_for, duty_candidates, rule_facts_for
from apps.studies.services import studies_routed_mark
from apps.traceability.models import IncidentKind
from apps.traceability.services import incident_record
from apps.worklist.models import OPEN_STATUSES, AssignmentState, Case, CaseEvent, CaseEventKind, CaseStatus
from apps.worklist.services import case_event_add

log = logging.getLogger(__name__)

ROUTABLE = {CaseStatus.AWAITING_VALIDATION: Purpose.VALIDATION, CaseStatus.AWAITING_READING: Purpose.READING}
ACTIVE_ASSIGNMENT = (AssignmentState.OFFERED, AssignmentState.ACKNOWLEDGED)
# Waiting for someone to answer within a delay: offered to a radiologist, or queued for a provider.
ESCALATING = (AssignmentState.OFFERED, AssignmentState.QUEUED)
# A case is in someone's hands when a radiologist is offered it, acknowledged it or reads it, when it waits in
# a private provider's queue, or when the coordinator was alerted because nobody could take it. Unassigned (routing not done, or failed) it is not.
CASE_HANDLED = (Q(assignment_state__in=[AssignmentState.OFFERED, AssignmentState.ACKNOWLEDGED,
                                        AssignmentState.COORDINATOR, AssignmentState.QUEUED])
                | Q(claimed_by__isnull=False))


def _locked_case(case_id: int) -> Case | None:
    return (Case.objects.select_for_update(of=("self",))
            .select_related("site__territory__region", "modality", "assigned_to").filter(pk=case_id).first())


_REFUSALS = (CaseEventKind.DECLINED, CaseEventKind.HANDED_BACK)


def _locked_case_counted(case_id: int) -> Case | None:
    """``_locked_case`` that also reads, in the same statement, how many decisions the case has had
    (``n_decisions``) and whether anyone declined or handed it back (``has_refusals``): the first decision
    of a case, the common one under load, then needs neither of the two extra reads."""
    decisions = (RoutingDecision.objects.filter(case_id=OuterRef("pk")).order_by().values("case_id")
                 .annotate(n=Count("pk")).values("n"))
    refusals = CaseEvent.objects.filter(case_id=OuterRef("pk"), kind__in=_REFUSALS, actor_id__isnull=False)
    return (Case.objects.select_for_update(of=("self",))
            .select_related("site__territory__region", "modality", "assigned_to")
            .annotate(n_decisions=Coalesce(Subquery(decisions, output_field=IntegerField()), Value(0)),
                      has_refusals=Exists(refusals))
            .filter(pk=case_id).first())


def _excluded(case: Case) -> frozenset[int]:
    """Radiologists who declined or handed back this case: never offered it again."""
    if getattr(case, "has_refusals", True) is False:
        return frozenset()
    ids = case.events.filter(kind__in=_REFUSALS, actor_id__isnull=False).values_list("actor_id", flat=True)
    return frozenset(ids)


def _purpose(case: Case) -> str:
    return ROUTABLE.get(case.status, Purpose.READING)  # type: ignore[call-overload]


def routing_decide(case: Case, *, at: dt.datetime, level: int = 0,
                   excluded: frozenset[int] = frozenset()) -> tuple[Decision, float]:
    """Load the facts and decide (no writes). Returns the decision and the time it took in ms."""
    t0 = time.perf_counter()
    site = case.site
    facts = dataclasses.replace(
        case_facts_for(site=site, modality_code=case.modality_id, eligible=case.modality.teleradiology_eligible,
                       urgency=case.urgency, at=at, case_id=case.pk, subspecialty=case.needed_subspecialty),
        purpose=_purpose(case))
    rule = None
    duty: dict = {}
    if facts.eligible:
        rule = match_rule(facts, rule_facts_for(region_id=site.territory.region_id, site_id=site.pk, at=at,
                                                modality_code=case.modality_id, zone_ids=facts.zone_ids,
                                                partner_ids=facts.agreed_partner_ids))
        if rule is not None:
            rule = rule_with_queues(rule, facts, at=at)
            duty = duty_candidates(line_ids=[t.line_id for t in rule.targets], at=at)
    decision = decide(facts, rule, duty, level=level, excluded=excluded)
    return decision, (time.perf_counter() - t0) * 1000


def _apply(case: Case, *, trigger: str, level: int, actor_id: int | None = None,
           excluded: frozenset[int] | None = None) -> Case:
    """Decide for a locked case and write the outcome (assignment or coordinator)."""
    now = timezone.now()
    decision, ms = routing_decide(case, at=now, level=level,
                                  excluded=_excluded(case) if excluded is None else excluded)
    attempt = getattr(case, "n_decisions", None)
    if attempt is None:
        attempt = RoutingDecision.objects.filter(case=case).count()
    case.n_decisions = attempt + 1  # type: ignore[attr-defined]
    RoutingDecision.objects.create(
        case=case, attempt=attempt, at=now, trigger=trigger, purpose=_purpose(case), outcome=decision.outcome,
        rule_id=decision.rule_id, line_id=decision.line_id, radiologist_id=decision.radiologist_id,
        escalation_level=decision.level, overflowed=decision.overflowed, decision_ms=round(ms, 3),
        candidates=[{"radiologist_id": c.radiologist_id, "name": c.name, "role": c.role, "load": c.load,
                     "line_id": c.line_id} for c in decision.candidates],
        reasons=list(decision.reasons))
    if decision.outcome == ASSIGNED:
        delay = decision.delay_minutes if decision.delay_minutes is not None else 15
        due = now + dt.timedelta(minutes=delay)
        fields = {"assignment_state": AssignmentState.OFFERED, "assigned_to_id": decision.radiologist_id,
                  "assigned_line_id": decision.line_id, "assigned_at": now, "acknowledged_at": None,
                  "escalation_level": decision.level, "escalation_due_at": due, "overflowed": decision.overflowed}
        Case.objects.filter(pk=case.pk).update(**fields)
        for name, value in fields.items():  # the row is locked: memory and database agree without a re-read
            setattr(case, name, value)
        who = case.assigned_to
        assert who is not None  # just assigned
        what = "indication validation" if _purpose(case) == Purpose.VALIDATION else "reading"
        case_event_add(case=case, kind=CaseEventKind.ASSIGNED, actor_id=actor_id,
                       message=f"Assigned to {who.display_name} ({decision.line_name}) for {what}; "
                               f"acknowledge within {decision.delay_minutes} min",
                       data={"radiologist_id": who.pk, "line_id": case.assigned_line_id, "level": decision.level,
                             "overflowed": decision.overflowed, "trigger": trigger, "purpose": _purpose(case)})
        audit_record(action="assign", obj=case, patient_data=True, establishment_id=case.site_id,
                     details={"radiologist_id": who.pk, "line_id": case.assigned_line_id, "trigger": trigger,
                              "level": decision.level})
        notification_create(user=who, case=case, kind="assigned",
                            title=f"PDS: {case.get_urgency_display()} {case.modality_id} from {case.site.name}",
                            body=f"Case #{case.pk} assigned to you for {what} ({case.exam}). "
                                 f"Acknowledge within {decision.delay_minutes} min.")
    elif decision.outcome == QUEUED:
        case_queue(case, decision, now=now, trigger=trigger, purpose=_purpose(case), actor_id=actor_id)
    elif decision.outcome == COORDINATOR:
        _to_coordinator(case, decision, now=now, actor_id=actor_id)
    return case


def _to_coordinator(case: Case, decision: Decision, *, now: dt.datetime, actor_id: int | None) -> None:
    Case.objects.filter(pk=case.pk).update(assignment_state=AssignmentState.COORDINATOR, assigned_to=None,
                                           escalation_level=decision.level, escalation_due_at=None)
    case.refresh_from_db()
    why = "; ".join(decision.reasons[1:] if decision.rule_id else decision.reasons) or "no radiologist available"
    kind = IncidentKind.ESCALATED_TO_COORDINATOR if decision.rule_id else IncidentKind.NO_COVERAGE
    incident_record(kind=kind, summary=f"Case #{case.pk} ({case.modality_id}, {case.site.name}): {why}",
                    source="routing", severity="critical" if case.urgency == "vital" else "warning",
                    establishment_id=case.site_id, case_id=case.pk, details={"reasons": list(decision.reasons)})
    case_event_add(case=case, kind=CaseEventKind.ESCALATED, actor_id=actor_id, message=f"Escalated to the regional "
                   f"coordinator: {why}", data={"level": decision.level, "reasons": list(decision.reasons)})
    audit_record(action="escalate", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"to": "coordinator", "level": decision.level})
    region_id = case.site.territory.region_id
    for coordinator in User.objects.filter(role=Role.ARS_COORDINATOR, region_id=region_id, is_active=True):
        notification_create(user=coordinator, case=case, kind="coordinator",
                            title=f"PDS alert: case #{case.pk} unassigned ({case.modality_id}, {case.site.name})",
                            body="\n".join(decision.reasons) or why)


def case_route(*, case_id: int, trigger: str = "route") -> Case | None:
    """Assign a case awaiting validation or reading that nobody holds yet. Idempotent: a case already
    offered, acknowledged, escalated to the coordinator, or in another status is left alone.

    An error rolls the attempt back, is recorded on the case (``routing_failure_record``) and raised again
    (the task retries it; the reconciler too)."""
    try:
        case, handled = _case_route(case_id=case_id, trigger=trigger)
    except Exception as exc:
        _failure_record_safely(case_id=case_id, trigger=trigger, error=exc)
        raise
    if handled:
        _studies_routed_mark_safely(case_id)
    return case


def case_studies_routed_mark(*, case_id: int | None = None) -> int:
    """Mark ``routed`` the complete studies whose case routing has taken in hand (``CASE_HANDLED``): those of
    ``case_id``, or all (the reconciler's sweep). One statement; the studies' side is ``studies_routed_mark``."""
    cases = Case.objects.filter(CASE_HANDLED)
    if case_id is not None:
        cases = cases.filter(pk=case_id)
    return studies_routed_mark(case_ids=cases.values("pk"))


def _studies_routed_mark_safely(case_id: int) -> None:
    """Mark the case's studies ``routed`` after the decision committed, with the case lock released (study
    rows are locked before case rows: docs/locking.md). Never for a decision that was rolled back; should
    this fail, or the process die first, the reconciler's sweep (``unassigned_reconcile``) marks them."""
    try:
        case_studies_routed_mark(case_id=case_id)
    except Exception:
        log.warning("studies of case %s not marked routed; the reconciler's sweep will", case_id, exc_info=True)


@transaction.atomic
def _case_route(*, case_id: int, trigger: str) -> tuple[Case | None, bool]:
    """The decision, in the case-locked transaction. Returns the case and whether routing has it in hand
    (its studies are then marked ``routed`` by the caller, after commit)."""
    case = _locked_case_counted(case_id)
    if case is None:
        return None, False
    if case.status not in ROUTABLE or case.assignment_state != AssignmentState.UNASSIGNED:
        # Already in someone's hands (offered for validation before its images came, say): its studies are.
        return case, True
    if not case.modality.teleradiology_eligible:
        # Defensive: case_create already redirects ultrasound. Record the refusal once.
        if not RoutingDecision.objects.filter(case=case, outcome=DecisionOutcome.REFUSED).exists():
            decision, ms = routing_decide(case, at=timezone.now())
            reasons = list(decision.reasons)
            nearest = nearest_ultrasound_referrals(case.site)
            if nearest:
                reasons.append(f"nearest ultrasound referral: {nearest[0].name}, about {nearest[0].travel_minutes} "
                               f"min, tel. {nearest[0].phone}")
            RoutingDecision.objects.create(case=case, attempt=RoutingDecision.objects.filter(case=case).count(),
                                           at=timezone.now(), trigger=trigger, purpose=_purpose(case),
                                           outcome=DecisionOutcome.REFUSED, reasons=reasons,
                                           decision_ms=round(ms, 3))
        return case, False
    return _apply(case, trigger=trigger, level=0), True


@transaction.atomic
def case_escalate(*, case_id: int, now: dt.datetime | None = None) -> Case | None:
    """Move an offered case whose acknowledgement delay has passed, or a queued case a provider has not taken
    within its SLA, to the next group of its chain."""
    now = now or timezone.now()
    case = _locked_case(case_id)
    if case is None or case.assignment_state not in ESCALATING:
        return case
    if case.escalation_due_at is None or case.escalation_due_at > now:
        return case
    if case.status not in OPEN_STATUSES:
        Case.objects.filter(pk=case.pk).update(escalation_due_at=None)
        return case
    if case.status not in ROUTABLE:
        # Validated and waiting for images, or being read: nothing to escalate now (escalations_run skips it;
        # once the images are complete an unacknowledged case escalates at the next tick).
        return case
    previous = case.assigned_to
    if case.assignment_state == AssignmentState.QUEUED and case.assigned_line is not None:
        case_event_add(case=case, kind=CaseEventKind.ESCALATED,
                       message=f"Not taken by the private provider {case.assigned_line.name} in time: escalating",
                       data={"from_line_id": case.assigned_line_id, "level": case.escalation_level + 1})
    elif previous is not None:
        case_event_add(case=case, kind=CaseEventKind.ESCALATED,
                       message=f"Not acknowledged by {previous.display_name} in time: escalating",
                       data={"from_radiologist_id": previous.pk, "level": case.escalation_level + 1})
    return _apply(case, trigger="escalation", level=case.escalation_level + 1)


def escalations_run(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Escalate every offered or queued case past its delay (beat task). Each case in its own transaction."""
    now = now or timezone.now()
    ids = list(Case.objects.filter(assignment_state__in=ESCALATING, escalation_due_at__lte=now,
                                   status__in=list(ROUTABLE))
               .order_by("escalation_due_at").values_list("pk", flat=True)[:limit])
    for case_id in ids:
        try:
            case_escalate(case_id=case_id, now=now)
        except Exception as exc:  # rolled back (still offered to the same radiologist); the next tick retries
            _failure_record_safely(case_id=case_id, trigger="escalation", error=exc)
    return len(ids)


def unassigned_reconcile(*, limit: int = 500) -> int:
    """Route cases left unassigned (the broker may have been down when they were enqueued)."""
    ids = list(Case.objects.filter(assignment_state=AssignmentState.UNASSIGNED, status__in=list(ROUTABLE))
               .exclude(modality__teleradiology_eligible=False).order_by("requested_at")
               .values_list("pk", flat=True)[:limit])
    for case_id in ids:
        try:
            case_route(case_id=case_id, trigger="reconcile")
        except Exception:  # recorded on the case by case_route; one failing case must not hold up the others
            continue
    # Safety net: studies whose case was taken in hand while their routing message went unconsumed.
    case_studies_routed_mark()
    coordinator_cases_reoffer(limit=limit)
    return len(ids)


def _offered_before(case: Case) -> frozenset[int]:
    """The radiologists offered this case before who have not answered since: each was offered it last at
    some time, and has acknowledged no case after it. One who acknowledges their backlog is answering again
    and may be offered the case anew (two queries)."""
    offered = dict(RoutingDecision.objects.filter(case=case, radiologist_id__isnull=False).order_by()
                   .values_list("radiologist_id").annotate(last=Max("at")))
    if not offered:
        return frozenset()
    answered = dict(CaseEvent.objects.filter(kind=CaseEventKind.ACKNOWLEDGED, actor_id__in=list(offered),
                                             at__gt=min(offered.values())).order_by()
                    .values_list("actor_id").annotate(last=Max("at")))
    return frozenset(rid for rid, at in offered.items() if not (answered.get(rid) and answered[rid] > at))


@transaction.atomic
def case_reoffer(*, case_id: int, now: dt.datetime | None = None) -> Case | None:
    """Offer a case waiting on the coordinator to a suitable radiologist: one who has come on duty since, or
    one who let it go unanswered and has acknowledged a case since (their backlog). Those who declined it or
    handed it back stay excluded. Nothing is written while nobody can take it (the coordinator was alerted
    once already)."""
    case = _locked_case(case_id)
    if case is None or case.assignment_state != AssignmentState.COORDINATOR or case.status not in ROUTABLE:
        return case
    excluded = _excluded(case) | _offered_before(case)
    decision, _ms = routing_decide(case, at=now or timezone.now(), excluded=excluded)
    if decision.outcome not in (ASSIGNED, QUEUED):
        return case
    return _apply(case, trigger="reoffer", level=0, excluded=excluded)


def coordinator_cases_reoffer(*, limit: int = 500, region_id: int | None = None) -> int:
    """Re-offer every case waiting on the coordinator (of one region, or all) that someone can now take: the
    reconciler's sweep, and at once when a radiologist acknowledges a case. Returns how many were offered."""
    waiting = Case.objects.filter(assignment_state=AssignmentState.COORDINATOR, status__in=list(ROUTABLE))
    if region_id is not None:
        waiting = waiting.filter(site__territory__region_id=region_id)
    ids = list(waiting.order_by("requested_at").values_list("pk", flat=True)[:limit])
    offered = 0
    for case_id in ids:
        try:
            case = case_reoffer(case_id=case_id)
        except Exception as exc:  # rolled back: still with the coordinator; the next sweep retries
            _failure_record_safely(case_id=case_id, trigger="reoffer", error=exc)
            continue
        offered += bool(case is not None and case.assignment_state in ESCALATING)
    return offered


@transaction.atomic
def assignment_acknowledge(*, case_id: int, user: Any) -> Case:
    case = _locked_case(case_id)
    if case is None:
        raise NotFoundError(_("This case does not exist."))
    if case.assignment_state == AssignmentState.ACKNOWLEDGED and case.assigned_to_id == user.pk:
        return case
    if case.assigned_to_id != user.pk or case.assignment_state != AssignmentState.OFFERED:
        raise PermissionDeniedError(_("This case is not offered to you (it may have been escalated to someone else)."),
                                    code="not_offered_to_you")
    now = timezone.now()
    # Compare-and-set on top of the row lock: the state we read is the state we change.
    updated = Case.objects.filter(pk=case.pk, assigned_to_id=user.pk, assignment_state=AssignmentState.OFFERED) \
        .update(assignment_state=AssignmentState.ACKNOWLEDGED, acknowledged_at=now, escalation_due_at=None)
    if updated != 1:
        raise ApplicationError(_("The case changed meanwhile; reload the worklist."), code="conflict")
    case.refresh_from_db()
    case_event_add(case=case, kind=CaseEventKind.ACKNOWLEDGED, actor_id=user.pk,
                   message=f"Acknowledged by {user.display_name}")
    audit_record(action="acknowledge", obj=case, patient_data=True, establishment_id=case.site_id)
    # A radiologist answering again (acknowledging their backlog) may take the cases waiting on the
    # coordinator that they let go: re-offered by the worker once this commits, not in this request.
    enqueue_reoffer(case.site.territory.region_id)
    return case


def _give_up(case_id: int, user: Any, reason: str, *, kind: str, verb: str, allowed: tuple[str, ...]) -> Case:
    if not (reason or "").strip():
        raise ApplicationError(_("Say why you %(verb)s this case.") % {"verb": _(verb)}, code="reason_required")
    case = _locked_case(case_id)
    if case is None:
        raise NotFoundError(_("This case does not exist."))
    if case.assigned_to_id != user.pk or case.assignment_state not in allowed:
        raise PermissionDeniedError(_("You cannot %(verb)s a case that is not assigned to you.") % {"verb": _(verb)},
                                    code="not_yours")
    if case.status not in OPEN_STATUSES:
        raise ApplicationError(_("This case is %(status)s: nothing to %(verb)s.") % {
            "status": str(case.get_status_display()).lower(), "verb": _(verb)})
    updates: dict[str, Any] = {"assignment_state": AssignmentState.UNASSIGNED, "assigned_to": None,
                               "escalation_due_at": None}
    if case.claimed_by_id == user.pk:
        # Handing back ends the reading lock too, so that the next radiologist can take the case.
        updates.update(claimed_by=None, claimed_at=None)
        if case.status == CaseStatus.IN_PROGRESS:
            updates["status"] = CaseStatus.AWAITING_READING
    Case.objects.filter(pk=case.pk).update(**updates)
    case.refresh_from_db()
    case_event_add(case=case, kind=kind, actor_id=user.pk, message=f"{user.display_name}: {reason.strip()}"[:300],
                   data={"reason": reason.strip()})
    audit_record(action=kind, obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"reason": reason.strip()})
    if case.status not in ROUTABLE and case.status != CaseStatus.ACCEPTED:
        return case
    # Re-routed at once; the radiologist is excluded from now on (see _excluded).
    return _apply(case, trigger=kind, level=case.escalation_level, actor_id=user.pk)


@transaction.atomic
def assignment_decline(*, case_id: int, user: Any, reason: str) -> Case:
    """Decline an offered case with a reason: it goes at once to someone else."""
    return _give_up(case_id, user, reason, kind=CaseEventKind.DECLINED, verb=gettext_noop("decline"),
                    allowed=(AssignmentState.OFFERED,))


@transaction.atomic
def assignment_hand_back(*, case_id: int, user: Any, reason: str) -> Case:
    """Hand a case back (end of shift): it is re-routed at once to whoever is on duty."""
    return _give_up(case_id, user, reason, kind=CaseEventKind.HANDED_BACK, verb=gettext_noop("hand back"),
                    allowed=ACTIVE_ASSIGNMENT)


@transaction.atomic
def routing_rule_save(*, rule: RoutingRule, modality_codes: list[str], line_ids: list[int]) -> RoutingRule:
    """Save a rule, its modalities and ordered targets; refused when a target lacks an agreement in force."""
    rule.full_clean()
    errors = validate_rule_targets(rule, line_ids, modality_codes)
    if errors:
        raise ApplicationError(" ".join(errors), code="no_agreement")
    rule.save()
    rule.modalities.set(Modality.objects.filter(code__in=modality_codes))
    rule.targets.exclude(line_id__in=line_ids).delete()
    for order, line_id in enumerate(line_ids):
        rule.targets.update_or_create(line_id=line_id, defaults={"order": order})
    audit_record(action="update", obj=rule, details={"targets": line_ids})
    return rule
