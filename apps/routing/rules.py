"""Routing decisions as pure functions over frozen dataclasses (no database, no clock).

The escalation chain of a rule is an ordered list of *groups*: for each usable
target line in the rule's order, its on-duty primaries, then its backups.
Escalation level N designates the N-th non-empty group; past the last group
the case goes to the coordinator. Within a group the radiologist with the
least weighted load is chosen, preferring the needed sub-specialty.
Overflow: at level 0, when the first group's pooled line carries more
weighted load per on-duty radiologist than its threshold, the case goes to
the first later group held by a private provider (when there is one).

A private provider's queue (``TargetFacts.queue``) is a group of its own: the case is queued to the
provider's line without naming a radiologist (outcome ``queued``), only for reading, within the contracted
hours and under the capacity per hour; otherwise the target is skipped with why, and the chain moves on.

Agreement first, per radiologist: a line is usable when one of its holders has
an agreement in force with the site, but each on-duty radiologist is offered
the case only when their own employing establishment (their memberships among
the line's holders) has one too, so a holder whose agreement expired never reads
for the site through a pooled line. Every target skipped, and why, is in the
decision's reasons (the coordinator's alert carries them all).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAYTIME = "day"
URGENCY_WEIGHT = {"vital": 2.0, "urgent": 1.5, "deferred": 1.0}

ASSIGNED = "assigned"
QUEUED = "queued"
COORDINATOR = "coordinator"
REFUSED = "refused"
QUEUE_ROLE = "queue"


@dataclass(frozen=True)
class CaseFacts:
    case_id: int
    site_id: int
    zone_ids: frozenset[int]
    modality: str
    eligible: bool  # teleradiology-eligible modality (ultrasound is not)
    urgency: str
    period_kind: str  # weeknight | weekend | holiday | day
    subspecialty: str = ""
    # Establishments that may read for the site in this modality now: the site itself and every partner with
    # an agreement in force. None: facts built without them (rule tables that test other things).
    agreed_partner_ids: frozenset[int] | None = None
    purpose: str = "reading"  # reading | validation


@dataclass(frozen=True)
class QueueFacts:
    """A provider queue at the instant of the decision (``apps.rosters.contracts`` decided ``within_hours``)."""

    within_hours: bool
    hours_label: str
    capacity_per_hour: int
    queued_last_hour: int
    sla_minutes: tuple[int, int, int] = (10, 30, 120)  # vital, urgent, deferred

    @property
    def at_capacity(self) -> bool:
        return self.queued_last_hour >= self.capacity_per_hour

    def sla_for(self, urgency: str) -> int:
        return {"vital": self.sla_minutes[0], "urgent": self.sla_minutes[1]}.get(urgency, self.sla_minutes[2])


@dataclass(frozen=True)
class TargetFacts:
    line_id: int
    line_name: str
    line_kind: str  # site | pivot | pooled | provider | referral
    serves_site: bool
    covers_modality: bool
    agreement: bool
    overflow_threshold: float | None = None
    queue: QueueFacts | None = None


@dataclass(frozen=True)
class RuleFacts:
    rule_id: int
    name: str
    scope_kind: str  # site | zone
    site_id: int | None
    zone_id: int | None
    modalities: frozenset[str]
    period_kinds: frozenset[str]
    targets: tuple[TargetFacts, ...]
    priority: int = 100
    delays_minutes: tuple[int, int, int] = (5, 15, 60)  # vital, urgent, deferred

    def delay_for(self, urgency: str) -> int:
        return {"vital": self.delays_minutes[0], "urgent": self.delays_minutes[1]}.get(urgency,
                                                                                      self.delays_minutes[2])


@dataclass(frozen=True)
class Candidate:
    radiologist_id: int
    name: str
    line_id: int
    role: str  # primary | backup | expert
    load: float = 0.0
    subspecialties: frozenset[str] = frozenset()
    # The radiologist's employing establishments for this line (memberships among its holders, else all).
    employer_ids: frozenset[int] = frozenset()
    employer: str = ""
    # Roster rules the shift breaks (codes of apps.rosters.checks, stored as the shift's flags): such a shift
    # was kept for the coordinator to see, never to be offered cases.
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Group:
    target: TargetFacts
    role: str
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class Decision:
    outcome: str  # assigned | queued | coordinator | refused
    rule_id: int | None = None
    line_id: int | None = None
    radiologist_id: int | None = None
    level: int = 0
    line_name: str = ""
    overflowed: bool = False
    delay_minutes: int | None = None
    candidates: tuple[Candidate, ...] = ()
    reasons: tuple[str, ...] = field(default_factory=tuple)


def case_load_weight(modality_weight: float, urgency: str) -> float:
    """Weight of one open case in a radiologist's load."""
    return modality_weight * URGENCY_WEIGHT.get(urgency, 1.0)


def rule_applies(rule: RuleFacts, case: CaseFacts) -> bool:
    if case.modality not in rule.modalities or case.period_kind not in rule.period_kinds:
        return False
    if rule.scope_kind == "site":
        return rule.site_id == case.site_id
    return rule.zone_id is not None and rule.zone_id in case.zone_ids


def match_rule(case: CaseFacts, rules: list[RuleFacts] | tuple[RuleFacts, ...]) -> RuleFacts | None:
    """The most specific applicable rule: a site rule before a zone rule, then by priority."""
    applicable = [r for r in rules if rule_applies(r, case)]
    if not applicable:
        return None
    return min(applicable, key=lambda r: (0 if r.scope_kind == "site" else 1, r.priority, r.rule_id))


def usable_targets(rule: RuleFacts) -> list[tuple[TargetFacts, str]]:
    """Each target with why it cannot be used ('' when usable)."""
    out = []
    for t in rule.targets:
        why = ""
        if not t.serves_site:
            why = f"{t.line_name} does not serve this site"
        elif not t.covers_modality:
            why = f"{t.line_name} does not cover this modality"
        elif not t.agreement:
            why = f"no agreement in force with {t.line_name}"
        out.append((t, why))
    return out


def has_agreement(candidate: Candidate, case: CaseFacts) -> bool:
    """Whether the candidate's employing establishment may read for the case's site (agreement first)."""
    if case.agreed_partner_ids is None:
        return True
    return bool(candidate.employer_ids & case.agreed_partner_ids)


def queue_refusal(target: TargetFacts, case: CaseFacts | None) -> str:
    """Why a provider queue cannot take the case now ('' when it can)."""
    q = target.queue
    if q is None:
        return ""
    if case is not None and case.purpose != "reading":
        return f"provider {target.line_name} takes images to read, not indication validation"
    if not q.within_hours:
        return f"provider {target.line_name} is outside its contracted hours ({q.hours_label})"
    if q.at_capacity:
        return (f"provider {target.line_name} is at capacity ({q.queued_last_hour} case(s) queued in the last "
                f"hour, capacity {q.capacity_per_hour})")
    return ""


def escalation_groups(rule: RuleFacts, duty: dict[int, tuple[Candidate, ...]],
                      excluded: frozenset[int] = frozenset(), case: CaseFacts | None = None) -> list[Group]:
    groups: list[Group] = []
    for target, why in usable_targets(rule):
        if why:
            continue
        if target.queue is not None:
            if not queue_refusal(target, case):
                groups.append(Group(target, QUEUE_ROLE, ()))
            continue
        on_line = duty.get(target.line_id, ())
        for role in ("primary", "backup"):
            cands = tuple(c for c in on_line if c.role == role and c.radiologist_id not in excluded
                          and not c.flags and (case is None or has_agreement(c, case)))
            if cands:
                groups.append(Group(target, role, cands))
    return groups


def target_reasons(case: CaseFacts, rule: RuleFacts, duty: dict[int, tuple[Candidate, ...]],
                   excluded: frozenset[int] = frozenset()) -> list[str]:
    """For every target of the rule, why it (or some of its radiologists) cannot take the case."""
    out: list[str] = []
    for target, why in usable_targets(rule):
        if why:
            out.append(f"target skipped: {why}")
            continue
        if target.queue is not None:
            refusal = queue_refusal(target, case)
            if refusal:
                out.append(f"target skipped: {refusal}")
            continue
        on_line = [c for c in duty.get(target.line_id, ()) if c.role in ("primary", "backup")]
        if not on_line:
            out.append(f"target skipped: nobody on duty on {target.line_name}")
            continue
        for c in on_line:
            if not has_agreement(c, case):
                out.append(f"{c.name} ({c.role} on {target.line_name}) skipped: no agreement in force between "
                           f"{c.employer or 'their establishment'} and this site")
            elif c.flags:
                out.append(f"{c.name} ({c.role} on {target.line_name}) skipped: the shift breaks roster rules "
                           f"({', '.join(sorted(c.flags))})")
        left = [c for c in on_line if has_agreement(c, case) and not c.flags]
        if left and all(c.radiologist_id in excluded for c in left):
            out.append(f"target skipped: everyone on duty on {target.line_name} declined the case, handed it back "
                       f"or was offered it already")
        elif not left:
            out.append(f"target skipped: nobody on duty on {target.line_name} can take the case")
    return out


def pick(group: Group, subspecialty: str = "") -> Candidate:
    pool = group.candidates
    if subspecialty:
        matching = tuple(c for c in pool if subspecialty in c.subspecialties)
        pool = matching or pool
    return min(pool, key=lambda c: (c.load, c.radiologist_id))


def line_load_per_radiologist(candidates: tuple[Candidate, ...]) -> float:
    people = {c.radiologist_id: c.load for c in candidates}
    return sum(people.values()) / len(people) if people else 0.0


def decide(case: CaseFacts, rule: RuleFacts | None, duty: dict[int, tuple[Candidate, ...]], *, level: int = 0,
           excluded: frozenset[int] = frozenset()) -> Decision:
    """Who gets the case at escalation ``level``, not counting the ``excluded`` radiologists."""
    if not case.eligible:
        return Decision(REFUSED, reasons=(f"{case.modality} is not read remotely (ultrasound): redirect the patient "
                                          f"to an ultrasound referral centre",))
    if rule is None:
        return Decision(COORDINATOR, level=level, reasons=(
            f"no routing rule covers {case.modality} at this site during this period ({case.period_kind})",))
    reasons: list[str] = [f"rule « {rule.name} » matched ({case.modality}, {case.period_kind})"]
    reasons += target_reasons(case, rule, duty, excluded)
    groups = escalation_groups(rule, duty, excluded, case)
    if excluded:
        reasons.append(f"excluded: {len(excluded)} radiologist(s) who declined or handed back")
    overflowed = False
    if level == 0 and groups:
        first = groups[0].target
        if first.line_kind == "pooled" and first.overflow_threshold is not None:
            load = line_load_per_radiologist(duty.get(first.line_id, ()))
            if load > first.overflow_threshold:
                later = next((i for i, g in enumerate(groups) if i > 0 and g.target.line_kind == "provider"), None)
                if later is not None:
                    level, overflowed = later, True
                    reasons.append(f"overflow: {first.line_name} load {load:.1f} per radiologist > threshold "
                                   f"{first.overflow_threshold:.1f}; sent to provider {groups[later].target.line_name}")
                else:
                    reasons.append(f"{first.line_name} over its threshold ({load:.1f}) but no provider target")
    if level >= len(groups):
        if groups:
            reasons.append("no one left on the escalation chain: the coordinator is alerted")
        elif any(duty.get(t.line_id) or t.queue for t, why in usable_targets(rule) if not why):
            reasons.append("no radiologist on duty on the rule's targets can take the case: the coordinator "
                           "is alerted")
        else:
            reasons.append("nobody on duty on the rule's targets: the coordinator is alerted")
        return Decision(COORDINATOR, rule_id=rule.rule_id, level=level, overflowed=overflowed, reasons=tuple(reasons))
    group = groups[level]
    if group.role == QUEUE_ROLE:
        assert group.target.queue is not None  # a queue group is built from a queue target
        queue = group.target.queue
        reasons.append(f"queued for provider {group.target.line_name}: within its contracted hours "
                       f"({queue.hours_label}), {queue.queued_last_hour} of {queue.capacity_per_hour} case(s) "
                       f"in the last hour")
        return Decision(QUEUED, rule_id=rule.rule_id, line_id=group.target.line_id,
                        line_name=group.target.line_name, level=level, overflowed=overflowed,
                        delay_minutes=queue.sla_for(case.urgency), reasons=tuple(reasons))
    chosen = pick(group, case.subspecialty)
    why = f"{group.role} on {group.target.line_name}, least load ({chosen.load:.1f})"
    if case.subspecialty and case.subspecialty in chosen.subspecialties:
        why += f", has the needed sub-specialty {case.subspecialty}"
    reasons.append(f"chose {chosen.name}: {why}")
    return Decision(ASSIGNED, rule_id=rule.rule_id, line_id=group.target.line_id, line_name=group.target.line_name,
                    radiologist_id=chosen.radiologist_id, level=level, overflowed=overflowed,
                    delay_minutes=rule.delay_for(case.urgency), candidates=group.candidates, reasons=tuple(reasons))
