"""Loops that must close after the report or around it: a critical finding call the physician has not confirmed,
an expert opinion requested (the expert is alerted) and not given by its deadline.

Invariants: each alert is sent once, guarded by a compare-and-set on its timestamp (``alerted_at``,
``escalated_at``), so the beat task is safe to re-run and two workers never alert twice; the alert, the case
event and the mark commit together. The expert is alerted from the case timeline (routing subscribes to the
worklist's "expert requested" event in RoutingConfig.ready()), in the transaction that records the request.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.audit.services import audit_record
from apps.routing.notifiers import notification_create
from apps.worklist.models import (
    Case,
    CaseEvent,
    CaseEventKind,
    CriticalFindingCall,
    ExpertRequest,
    ExpertRequestStatus,
)
from apps.worklist.services import case_event_add

# The physician confirms a critical finding call from the request's page within this delay, else the radiologist
# who called and the region's coordinators are alerted (once).
CRITICAL_CONFIRM_MINUTES = 30


def _coordinators(case: Case) -> list[Any]:
    return list(User.objects.filter(role=Role.ARS_COORDINATOR, region_id=case.site.territory.region_id,
                                    is_active=True))


def critical_calls_unconfirmed_alert(*, now: dt.datetime | None = None, limit: int = 200) -> int:
    """Alert about every critical finding call left unconfirmed past the delay. Returns how many."""
    now = now or timezone.now()
    due = now - dt.timedelta(minutes=CRITICAL_CONFIRM_MINUTES)
    ids = list(CriticalFindingCall.objects.filter(confirmed_at__isnull=True, alerted_at__isnull=True,
                                                  called_at__lte=due)
               .order_by("called_at").values_list("pk", flat=True)[:limit])
    return sum(_critical_call_alert(call_id=i, now=now) for i in ids)


@transaction.atomic
def _critical_call_alert(*, call_id: int, now: dt.datetime) -> bool:
    if not CriticalFindingCall.objects.filter(pk=call_id, confirmed_at__isnull=True, alerted_at__isnull=True) \
            .update(alerted_at=now):
        return False  # confirmed or alerted meanwhile
    call = CriticalFindingCall.objects.select_related("case__site__territory", "called_by").get(pk=call_id)
    case = call.case
    title = f"PDS: critical finding not confirmed, case #{case.pk} ({case.site.name})"
    body = (f"The critical finding called to {call.physician_name} has not been confirmed by the requesting "
            f"site after {CRITICAL_CONFIRM_MINUTES} min.")
    for user in [call.called_by, *_coordinators(case)]:
        notification_create(user=user, case=case, kind="critical_unconfirmed", title=title, body=body)
    case_event_add(case=case, kind=CaseEventKind.CRITICAL_UNCONFIRMED, at=now, data={"call": call.pk},
                   message=f"Critical finding call to {call.physician_name} not confirmed after "
                           f"{CRITICAL_CONFIRM_MINUTES} min: radiologist and coordinator alerted")
    audit_record(action="alert", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"critical_call": call.pk, "unconfirmed_minutes": CRITICAL_CONFIRM_MINUTES})
    return True


# --- Expert opinion -------------------------------------------------------------------------------------------


def expert_request_alert(*, event: CaseEvent) -> None:
    """Case timeline subscriber: a new expert request alerts the expert on duty on the referral line, or the
    coordinators at once when nobody is on duty there."""
    if event.kind != CaseEventKind.EXPERT_REQUESTED:
        return
    request_id = (event.data or {}).get("expert_request")
    req = (ExpertRequest.objects.select_related("expert", "line", "case__site__territory").filter(pk=request_id)
           .first() if isinstance(request_id, int) else None)
    if req is None:
        return
    case = req.case
    due = f" Opinion due by {timezone.localtime(req.due_at):%H:%M}." if req.due_at else ""
    if req.expert is not None:
        notification_create(user=req.expert, case=case, kind="expert",
                            title=f"PDS: expert opinion requested ({req.line.name})",
                            body=f"Case #{case.pk} ({case.modality_id} {case.exam}, {case.site.name}).{due}")
        return
    for coordinator in _coordinators(case):
        notification_create(user=coordinator, case=case, kind="expert",
                            title=f"PDS alert: no expert on duty on {req.line.name}",
                            body=f"Case #{case.pk}: expert opinion requested, nobody on duty on the line.{due}")


def expert_requests_overdue_escalate(*, now: dt.datetime | None = None, limit: int = 200) -> int:
    """Escalate to the coordinators every open expert request past its deadline (once). Returns how many."""
    now = now or timezone.now()
    ids = list(ExpertRequest.objects.filter(status=ExpertRequestStatus.OPEN, escalated_at__isnull=True,
                                            due_at__lte=now)
               .order_by("due_at").values_list("pk", flat=True)[:limit])
    return sum(_expert_request_escalate(request_id=i, now=now) for i in ids)


@transaction.atomic
def _expert_request_escalate(*, request_id: int, now: dt.datetime) -> bool:
    if not ExpertRequest.objects.filter(pk=request_id, status=ExpertRequestStatus.OPEN,
                                        escalated_at__isnull=True).update(escalated_at=now):
        return False  # answered or escalated meanwhile
    req = ExpertRequest.objects.select_related("case__site__territory", "line", "expert", "requested_by") \
        .get(pk=request_id)
    case = req.case
    title = f"PDS alert: expert opinion overdue, case #{case.pk} ({req.line.name})"
    body = (f"Requested by {req.requested_by.display_name}"
            + (f" from {req.expert.display_name}" if req.expert else "") + ": no opinion by the deadline.")
    for user in [*_coordinators(case), req.requested_by]:
        notification_create(user=user, case=case, kind="expert_overdue", title=title, body=body)
    case_event_add(case=case, kind=CaseEventKind.EXPERT_OVERDUE, at=now, data={"expert_request": req.pk},
                   message=f"Expert opinion from {req.line.name} overdue: escalated to the coordinator")
    audit_record(action="escalate", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"expert_request": req.pk, "to": "coordinator"})
    return True


def followups_run(*, now: dt.datetime | None = None) -> int:
    """The beat task's body: both loops."""
    now = now or timezone.now()
    return critical_calls_unconfirmed_alert(now=now) + expert_requests_overdue_escalate(now=now)
