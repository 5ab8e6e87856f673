"""The coordinator's console: the cases waiting on them, who is on duty now, and assigning a case by hand.

No dead end at the coordinator: a case escalated to them is re-offered automatically as soon as someone new
can take it (``services.coordinator_cases_reoffer``, run by the reconciler), and meanwhile the coordinator may
give it to any radiologist whose employing establishment has an agreement in force with the requesting site
for the modality (agreement first holds for a hand-made assignment too), with the reason recorded in the
routing decision, the case timeline and the audit trail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import Membership, Role, User
from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, NotFoundError, PermissionDeniedError
from apps.rosters.models import Shift
from apps.rosters.selectors import OnDuty, on_duty_from_shifts
from apps.routing.models import DecisionOutcome, Purpose, RoutingDecision
from apps.routing.notifiers import notification_create
from apps.routing.selectors import agreed_partner_ids, period_kind_at
from apps.worklist.models import OPEN_STATUSES, AssignmentState, Case, CaseEventKind, CaseStatus
from apps.worklist.services import case_event_add

# Acknowledgement delay of a hand-made assignment, by urgency (as the routing rules' defaults).
ACK_MINUTES = {"vital": 5, "urgent": 15, "deferred": 60}
ASSIGNABLE_STATES = (AssignmentState.COORDINATOR, AssignmentState.UNASSIGNED, AssignmentState.OFFERED,
                     AssignmentState.QUEUED)


def _may_coordinate(actor: Any, region_id: int) -> bool:
    if getattr(actor, "is_superuser", False):
        return True
    return getattr(actor, "role", "") == Role.ARS_COORDINATOR and getattr(actor, "region_id", None) == region_id


def cases_waiting_on_coordinator(*, region_id: int) -> QuerySet[Case]:
    """Open cases of the region escalated to the coordinator, most urgent and oldest first."""
    return (Case.objects.filter(site__territory__region_id=region_id, assignment_state=AssignmentState.COORDINATOR,
                                status__in=OPEN_STATUSES)
            .select_related("site__territory", "modality").order_by("requested_at", "pk"))


def last_reasons(case_ids: list[int]) -> dict[int, list[str]]:
    """The reasons of each case's latest routing decision (why it reached the coordinator)."""
    out: dict[int, list[str]] = {}
    for case_id, reasons in (RoutingDecision.objects.filter(case_id__in=case_ids).order_by("case_id", "-attempt")
                             .values_list("case_id", "reasons")):
        out.setdefault(case_id, list(reasons or []))
    return out


def on_duty_in_region(*, region_id: int, at: dt.datetime) -> list[OnDuty]:
    """Everyone holding a shift on one of the region's active lines at ``at``."""
    return on_duty_from_shifts(Shift.objects.filter(line__region_id=region_id, line__active=True, start__lte=at,
                                                    end__gt=at))


@dataclass(frozen=True)
class Assignable:
    radiologist_id: int
    name: str
    employer: str
    on_duty: bool


def assignable_radiologists(case: Case, *, at: dt.datetime) -> list[Assignable]:
    """The active radiologists whose employing establishment may read this case's site and modality now (the
    site itself or a partner with an agreement in force), those on duty first."""
    partners = agreed_partner_ids(site_id=case.site_id, modality_code=case.modality_id, at=at,
                                  period_kind=period_kind_at(case.site, at))
    employers: dict[int, list[str]] = {}
    for uid, name in (Membership.objects.filter(establishment_id__in=partners, user__role=Role.RADIOLOGIST,
                                                user__is_active=True)
                      .values_list("user_id", "establishment__name")):
        employers.setdefault(uid, []).append(name)
    on_duty = set(Shift.objects.filter(radiologist_id__in=employers, start__lte=at, end__gt=at, line__active=True)
                  .values_list("radiologist_id", flat=True))
    people = User.objects.filter(pk__in=employers).order_by("last_name", "first_name")
    out = [Assignable(u.pk, u.display_name, ", ".join(sorted(employers[u.pk])), u.pk in on_duty) for u in people]
    return sorted(out, key=lambda a: not a.on_duty)


@transaction.atomic
def case_assign_by_coordinator(*, case_id: int, radiologist_id: int, reason: str, actor: Any) -> Case:
    """The coordinator gives a case to a radiologist by hand. Refused unless the radiologist's employing
    establishment has an agreement in force with the site for the modality. The radiologist is offered the
    case as routing would offer it (acknowledge within the urgency's delay, else the case escalates)."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("Say why you assign this case by hand."), code="reason_required")
    case = (Case.objects.select_for_update(of=("self",)).select_related("site__territory", "modality")
            .filter(pk=case_id).first())
    if case is None:
        raise NotFoundError(_("This case does not exist."))
    if not _may_coordinate(actor, case.site.territory.region_id):
        raise PermissionDeniedError(_("Only the coordinator of the case's region assigns it by hand."),
                                    code="not_coordinator")
    if case.status not in OPEN_STATUSES or case.assignment_state not in ASSIGNABLE_STATES:
        raise ApplicationError(_("This case is already acknowledged or closed: nothing to assign."),
                               code="conflict")
    who = User.objects.filter(pk=radiologist_id, role=Role.RADIOLOGIST, is_active=True).first()
    if who is None:
        raise ApplicationError(_("Choose an active radiologist."), code="not_radiologist")
    now = timezone.now()
    partners = agreed_partner_ids(site_id=case.site_id, modality_code=case.modality_id, at=now,
                                  period_kind=period_kind_at(case.site, now))
    if not who.memberships.filter(establishment_id__in=partners).exists():
        raise ApplicationError(_("No agreement in force between the establishment of %(who)s and %(site)s for "
                                 "%(modality)s.") % {"who": who.display_name, "site": case.site.name,
                                                     "modality": case.modality_id}, code="no_agreement")
    purpose = Purpose.VALIDATION if case.status == CaseStatus.AWAITING_VALIDATION else Purpose.READING
    delay = ACK_MINUTES.get(case.urgency, 15)
    fields = {"assignment_state": AssignmentState.OFFERED, "assigned_to_id": who.pk, "assigned_line_id": None,
              "assigned_at": now, "acknowledged_at": None, "escalation_due_at": now + dt.timedelta(minutes=delay)}
    Case.objects.filter(pk=case.pk).update(**fields)
    for name, value in fields.items():
        setattr(case, name, value)
    why = f"assigned by the coordinator {actor.display_name}: {reason}"
    RoutingDecision.objects.create(
        case=case, attempt=RoutingDecision.objects.filter(case=case).count(), at=now, trigger="coordinator",
        purpose=purpose, outcome=DecisionOutcome.ASSIGNED, radiologist=who, escalation_level=case.escalation_level,
        reasons=[why])
    case_event_add(case=case, kind=CaseEventKind.ASSIGNED, actor_id=actor.pk,
                   message=f"Assigned to {who.display_name} by the coordinator: {reason}"[:300],
                   data={"radiologist_id": who.pk, "trigger": "coordinator", "reason": reason, "purpose": purpose})
    audit_record(action="assign", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"radiologist_id": who.pk, "trigger": "coordinator", "reason": reason})
    notification_create(user=who, case=case, kind="assigned",
                        title=f"PDS: {case.get_urgency_display()} {case.modality_id} from {case.site.name}",
                        body=f"Case #{case.pk} assigned to you by the coordinator ({case.exam}): {reason}. "
                             f"Acknowledge within {delay} min.")
    return case
