"""Validation of the indication by the radiologist on duty, and the site's answer to a question."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, ConflictError
from apps.worklist.models import Case, CaseEventKind, CaseStatus
from apps.worklist.services.common import case_event_add, lock_case, require_radiologist

# --- Validation of the indication -----------------------------------------------------------------------


class ValidationDecision:
    ACCEPT = "accept"
    REFUSE = "refuse"
    ASK_INFO = "ask_info"


@transaction.atomic
def case_validate(*, case_id: int, user: Any, decision: str, protocol: str = "", reason: str = "") -> Case:
    """The on-duty radiologist accepts the indication with a protocol, refuses it with a reason, or asks
    the physician for more information."""
    require_radiologist(user)
    case = lock_case(case_id)
    if case.status not in (CaseStatus.AWAITING_VALIDATION, CaseStatus.INFO_REQUESTED):
        raise ConflictError(_("This request is no longer awaiting validation."))
    now = timezone.now()
    if decision == ValidationDecision.ACCEPT:
        if not protocol.strip():
            raise ApplicationError(_("Give the protocol to acquire."), code="protocol_required")
        case.status = CaseStatus.AWAITING_READING if case.images_complete_at else CaseStatus.ACCEPTED
        case.protocol, case.validation_note = protocol.strip(), reason.strip()
        kind, message = CaseEventKind.VALIDATED, f"Indication accepted. Protocol: {protocol.strip()}"
    elif decision == ValidationDecision.REFUSE:
        if not reason.strip():
            raise ApplicationError(_("Give the reason for the refusal."), code="reason_required")
        case.status, case.validation_note = CaseStatus.REFUSED, reason.strip()
        kind, message = CaseEventKind.REFUSED, f"Indication refused: {reason.strip()}"
    elif decision == ValidationDecision.ASK_INFO:
        if not reason.strip():
            raise ApplicationError(_("Write the question for the physician."), code="question_required")
        case.status, case.validation_note = CaseStatus.INFO_REQUESTED, reason.strip()
        kind, message = CaseEventKind.INFO_REQUESTED, f"More information requested: {reason.strip()}"
    else:
        raise ApplicationError(_("Unknown decision."), code="bad_decision")
    case.validated_by = user
    case.validated_at = now
    case.save(update_fields=["status", "protocol", "validation_note", "validated_by", "validated_at", "updated_at"])
    audit_record(action=f"validate:{decision}", obj=case, patient_data=True, establishment_id=case.site_id)
    case_event_add(case=case, kind=kind, actor_id=user.pk, message=message, at=now)
    return case


@transaction.atomic
def case_info_provide(*, case_id: int, user: Any, answer: str) -> Case:
    """The physician answers the radiologist's question; the request goes back to validation."""
    case = lock_case(case_id)
    if case.status != CaseStatus.INFO_REQUESTED:
        raise ConflictError(_("No information is requested on this request."))
    if not answer.strip():
        raise ApplicationError(_("Write your answer."), code="answer_required")
    stamp = timezone.localtime().strftime("%d/%m %H:%M")
    case.clinical_context = (case.clinical_context + f"\n[{stamp}] {answer.strip()}").strip()
    case.status = CaseStatus.AWAITING_VALIDATION
    case.save(update_fields=["clinical_context", "status", "updated_at"])
    audit_record(action="info_provide", obj=case, patient_data=True, establishment_id=case.site_id)
    case_event_add(case=case, kind=CaseEventKind.INFO_PROVIDED, actor_id=user.pk,
                   message=f"Information provided: {answer.strip()}")
    return case
