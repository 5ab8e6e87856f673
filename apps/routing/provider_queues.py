"""Private providers' queues (issue 18, point 14): the facts a decision reads about them, and queueing a case.

A provider line with an active ``apps.rosters.models.ProviderQueue`` is a destination in its own right:
routing queues a case to it without naming a radiologist when the rule's chain reaches it, within its
contracted hours (``apps.rosters.contracts``) and under its capacity per hour (cases queued to it in the hour
before the decision, counted from the routing decisions). The provider takes a queued case by claiming it:
one of its radiologists in the worklist, or its own system through the API (``apps.api``), which hears of it
by webhook (``request.queued``). A case not taken within the SLA for its urgency escalates to the rule's next
target like an unacknowledged offer.

Reads cost one query per decision when the matched rule has a provider target with a queue (the cases
queued to it in the last hour), none otherwise (the queues themselves are cached configuration).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.db.models import Count

from apps.audit.services import audit_record
from apps.rosters.contracts import PARIS, ContractHours, contract_open
from apps.rosters.models import LineKind, ProviderQueue
from apps.routing.models import DecisionOutcome, RoutingDecision
from apps.routing.rules import CaseFacts, Decision, QueueFacts, RuleFacts
from apps.routing.selectors import _cached
from apps.worklist.models import AssignmentState, Case, CaseEventKind
from apps.worklist.services import case_event_add


def contract_hours(queue: ProviderQueue) -> ContractHours:
    return ContractHours(queue.weekday_start, queue.weekday_end, queue.weekends, queue.holidays)


def rule_with_queues(rule: RuleFacts, case: CaseFacts, *, at: dt.datetime) -> RuleFacts:
    """The rule with each provider target that has an active queue carrying its ``QueueFacts`` now."""
    provider_lines = [t.line_id for t in rule.targets if t.line_kind == LineKind.PROVIDER]
    if not provider_lines:
        return rule
    # Configuration: cached with the rest of the region's (a saved queue clears it); the count is live.
    queues: dict[int, ProviderQueue] = _cached(("provider_queues", *sorted(provider_lines)), lambda: {
        q.line_id: q for q in ProviderQueue.objects.filter(line_id__in=provider_lines, active=True)})
    if not queues:
        return rule
    counts = dict(RoutingDecision.objects.filter(line_id__in=list(queues), outcome=DecisionOutcome.QUEUED,
                                                 at__gt=at - dt.timedelta(hours=1), at__lte=at)
                  .order_by().values_list("line_id").annotate(n=Count("pk")))
    # The site's calendar already said whether today is a public holiday there (its department's).
    holidays = frozenset({at.astimezone(PARIS).date()}) if case.period_kind == "holiday" else frozenset()
    targets = []
    for t in rule.targets:
        q = queues.get(t.line_id)
        if q is not None:
            hours = contract_hours(q)
            t = dataclasses.replace(t, queue=QueueFacts(
                contract_open(hours, at, holidays=holidays), hours.label, q.capacity_per_hour,
                int(counts.get(t.line_id, 0)), (q.sla_vital_minutes, q.sla_urgent_minutes, q.sla_deferred_minutes)))
        targets.append(t)
    return dataclasses.replace(rule, targets=tuple(targets))


def case_queue(case: Case, decision: Decision, *, now: dt.datetime, trigger: str, purpose: str,
               actor_id: int | None) -> None:
    """Write a ``queued`` decision on the locked case: on the provider's line, nobody named, to be taken
    within the SLA (the escalation tick moves it on otherwise)."""
    minutes = decision.delay_minutes if decision.delay_minutes is not None else 30
    fields: dict[str, Any] = {
        "assignment_state": AssignmentState.QUEUED, "assigned_to_id": None, "assigned_line_id": decision.line_id,
        "assigned_at": now, "acknowledged_at": None, "escalation_level": decision.level,
        "escalation_due_at": now + dt.timedelta(minutes=minutes), "overflowed": decision.overflowed}
    Case.objects.filter(pk=case.pk).update(**fields)
    for name, value in fields.items():  # the row is locked: memory and database agree without a re-read
        setattr(case, name, value)
    case_event_add(case=case, kind=CaseEventKind.QUEUED, actor_id=actor_id,
                   message=f"Queued for the private provider {decision.line_name}; to be taken within "
                           f"{minutes} min",
                   data={"line_id": decision.line_id, "level": decision.level, "overflowed": decision.overflowed,
                         "trigger": trigger, "purpose": purpose})
    audit_record(action="queue", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"line_id": decision.line_id, "trigger": trigger, "level": decision.level})
