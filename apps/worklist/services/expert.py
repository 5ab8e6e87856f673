"""Second opinion: a request to a sub-specialty referral line and the expert's answer."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, ConflictError
from apps.rosters.models import LineKind, OnCallLine
from apps.rosters.selectors import on_duty_for_line
from apps.worklist.models import CaseEventKind, ExpertRequest, ExpertRequestStatus
from apps.worklist.services.common import case_event_add, lock_case, require_radiologist

# --- Second opinion ---------------------------------------------------------------------------------------


@transaction.atomic
def expert_request_create(*, case_id: int, user: Any, line_id: int, question: str) -> ExpertRequest:
    """Send the case to a sub-specialty referral line; the expert on duty on that line gets it."""
    require_radiologist(user)
    case = lock_case(case_id)
    line = OnCallLine.objects.filter(pk=line_id, kind=LineKind.REFERRAL, active=True).first()
    if line is None:
        raise ApplicationError(_("Choose a sub-specialty referral line."), code="bad_line")
    if not question.strip():
        raise ApplicationError(_("Write the question for the expert."), code="question_required")
    now = timezone.now()
    # The expert on duty on the referral line (experts first, then primaries); nobody on duty: any
    # radiologist of the line may answer (the request shows in the line's worklists).
    duties = sorted(on_duty_for_line(line_id=line.pk, at=now), key=lambda d: d.role != "expert")
    expert_id = duties[0].radiologist_id if duties else None
    req = ExpertRequest.objects.create(case=case, requested_by=user, line=line, expert_id=expert_id,
                                       question=question.strip(), requested_at=now)
    audit_record(action="expert_request", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"line": line.pk, "expert": expert_id})
    case_event_add(case=case, kind=CaseEventKind.EXPERT_REQUESTED, actor_id=user.pk,
                   message=f"Expert opinion requested from {line.name}", data={"expert_request": req.pk}, at=now)
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
