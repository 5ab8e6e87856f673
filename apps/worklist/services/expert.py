"""Second opinion: a request to a sub-specialty referral line and the expert's answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, ConflictError
from apps.rosters.models import LineKind, OnCallLine
from apps.rosters.selectors import on_duty_for_line
from apps.worklist.models import CaseEventKind, ExpertRequest, ExpertRequestStatus, Urgency
from apps.worklist.services.common import case_event_add, lock_case, require_radiologist

# --- Second opinion ---------------------------------------------------------------------------------------


# The opinion is due this long after the request, by the case's urgency; past it routing escalates to the
# coordinator (apps.routing.followups).
EXPERT_DEADLINE_MINUTES: dict[str, int] = {Urgency.VITAL: 30, Urgency.URGENT: 60, Urgency.DEFERRED: 240}


def referral_line_for(*, region_id: int, subspecialty: str, at: dt.datetime) -> OnCallLine | None:
    """The referral centre's line for a sub-specialty: among the region's active referral lines of that
    sub-specialty, one with someone on duty now first (then by name)."""
    lines = list(OnCallLine.objects.filter(kind=LineKind.REFERRAL, active=True, region_id=region_id,
                                           subspecialty=subspecialty).order_by("name"))
    staffed = [line for line in lines if on_duty_for_line(line_id=line.pk, at=at)]
    return (staffed or lines)[0] if lines else None


@transaction.atomic
def expert_request_create(*, case_id: int, user: Any, question: str, line_id: int | None = None,
                          subspecialty: str = "") -> ExpertRequest:
    """Send the case to the referral line of a sub-specialty (``subspecialty``, else the one the request needs;
    or a line named by ``line_id``): the expert on duty there gets it and is alerted, with a deadline."""
    require_radiologist(user)
    case = lock_case(case_id)
    if not question.strip():
        raise ApplicationError(_("Write the question for the expert."), code="question_required")
    now = timezone.now()
    region_id = case.site.territory.region_id
    if line_id:
        line = OnCallLine.objects.filter(pk=line_id, kind=LineKind.REFERRAL, active=True, region_id=region_id).first()
    else:
        line = referral_line_for(region_id=region_id, subspecialty=subspecialty or case.needed_subspecialty, at=now)
    if line is None:
        raise ApplicationError(_("No referral line for this sub-specialty in the region."), code="bad_line")
    # The expert on duty on the referral line (experts first, then primaries), never the requester; nobody on
    # duty: any radiologist of the line may answer (the request shows in the line's worklists) and the
    # coordinator is alerted.
    duties = sorted((d for d in on_duty_for_line(line_id=line.pk, at=now) if d.radiologist_id != user.pk),
                    key=lambda d: d.role != "expert")
    expert_id = duties[0].radiologist_id if duties else None
    due_at = now + dt.timedelta(minutes=EXPERT_DEADLINE_MINUTES.get(case.urgency, 60))
    req = ExpertRequest.objects.create(case=case, requested_by=user, line=line, expert_id=expert_id,
                                       question=question.strip(), requested_at=now, due_at=due_at,
                                       subspecialty=line.subspecialty)
    audit_record(action="expert_request", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"line": line.pk, "expert": expert_id, "due_at": due_at.isoformat()})
    case_event_add(case=case, kind=CaseEventKind.EXPERT_REQUESTED, actor_id=user.pk,
                   message=f"Expert opinion requested from {line.name}",
                   data={"expert_request": req.pk, "expert": expert_id, "due_at": due_at.isoformat()}, at=now)
    return req


@transaction.atomic
def expert_opinion_give(*, expert_request_id: int, user: Any, opinion: str) -> ExpertRequest:
    require_radiologist(user)
    if not opinion.strip():
        raise ApplicationError(_("Write your opinion."), code="opinion_required")
    now = timezone.now()
    done = (ExpertRequest.objects.filter(pk=expert_request_id, status=ExpertRequestStatus.OPEN)
            .filter(models.Q(expert=user) | models.Q(expert__isnull=True))
            .update(opinion=opinion.strip(), status=ExpertRequestStatus.ANSWERED, answered_at=now, expert=user))
    if not done:
        raise ConflictError(_("This expert request is closed or addressed to another expert."))
    req = ExpertRequest.objects.select_related("case").get(pk=expert_request_id)
    audit_record(action="expert_opinion", obj=req.case, patient_data=True, establishment_id=req.case.site_id)
    case_event_add(case=req.case, kind=CaseEventKind.EXPERT_ANSWERED, actor_id=user.pk,
                   message=f"Expert opinion given by {user.display_name}", at=now)
    return req
