"""Writes on cases. Only these functions (and apps.routing.services for assignment) change a case.

Every change records a CaseEvent (the timeline shown to users and used by
the tele-act record and the webhooks) and an audit entry, in the same
transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, ConflictError, NotFoundError, PermissionDeniedError
from apps.worklist.models import (
    OPEN_STATUSES,
    Addendum,
    Case,
    CaseEvent,
    CaseEventKind,
    CaseStatus,
    CriticalFindingCall,
    ExpertRequest,
    ExpertRequestStatus,
    Origin,
    Report,
    ReportStatus,
)

ROUTE_TASK = "routing.route_case"


def enqueue_routing(case_id: int) -> None:
    """Hand the case to routing once the transaction commits. The message is only a hint: the
    routing reconciler finds cases left unassigned if the broker was down."""
    from pds_platform.celery import app

    def send() -> None:
        try:
            app.send_task(ROUTE_TASK, args=[case_id])
        except Exception:  # broker down: the periodic reconciler will pick the case up
            import logging

            logging.getLogger(__name__).warning("could not enqueue routing for case %s", case_id, exc_info=True)

    transaction.on_commit(send)


def case_event_add(*, case: Case, kind: str, message: str, actor_id: int | None = None,
                   data: dict[str, Any] | None = None, at: dt.datetime | None = None) -> CaseEvent:
    event = CaseEvent.objects.create(case=case, at=at or timezone.now(), kind=kind, actor_id=actor_id,
                                     message=message[:300], data=data or {})
    from apps.api.services import webhook_event_publish

    webhook_event_publish(event=event)
    return event


@dataclass(frozen=True)
class CaseInput:
    """What a physician (web form) or a RIS (API) submits."""

    patient_birth_name: str
    patient_first_names: str
    patient_sex: str
    patient_birth_date: dt.date
    clinical_question: str
    modality_code: str
    exam: str
    urgency: str = "urgent"
    patient_used_name: str = ""
    patient_birth_place: str = ""
    patient_ins: str = ""
    local_patient_id: str = ""
    clinical_context: str = ""
    needed_subspecialty: str = ""
    contrast_allergy: bool = False
    renal_function: str = ""
    pregnancy: str = "na"
    patient_informed: bool = False
    opposes_telemedicine: bool = False
    opposes_data_sharing: bool = False
    accession_number: str = ""


@transaction.atomic
def case_create(*, site_id: int, data: CaseInput, requested_by_id: int | None, origin: str = Origin.WEB,
                idempotency_key: str | None = None) -> tuple[Case, bool]:
    """Create an interpretation request. Returns (case, created); a repeated idempotency key returns the
    first case unchanged.

    Refusals (ApplicationError): the patient opposes tele-medicine. Ultrasound is not routed: the case
    is stored as redirected with the nearest ultrasound referral centre named in its timeline.
    """
    if idempotency_key:
        existing = Case.objects.filter(site_id=site_id, idempotency_key=idempotency_key).first()
        if existing:
            return existing, False
    if data.opposes_telemedicine:
        raise ApplicationError(
            "The patient opposes tele-medicine: this request cannot be sent for remote interpretation. "
            "Organise an on-site reading or a transfer.", code="patient_opposes_telemedicine")
    from apps.regions.models import Establishment, Modality

    modality = Modality.objects.filter(code=data.modality_code).first()
    if modality is None:
        raise ApplicationError(f"Unknown modality {data.modality_code!r}.", code="unknown_modality")
    site = Establishment.objects.select_related("territory__region").get(pk=site_id)
    fields = asdict(data)
    fields.pop("modality_code")
    case = Case(site=site, modality=modality, requested_by_id=requested_by_id, origin=origin,
                idempotency_key=idempotency_key or None, requested_at=timezone.now(), **fields)
    case.full_clean(exclude=["site", "modality", "requested_by"])
    try:
        with transaction.atomic():
            case.save()
    except IntegrityError:
        # Two identical retries raced: the other one won; return its case.
        existing = Case.objects.filter(site_id=site_id, idempotency_key=idempotency_key).first()
        if existing:
            return existing, False
        raise
    audit_record(action="create", obj=case, patient_data=True, establishment_id=site_id,
                 details={"origin": origin, "modality": modality.code, "urgency": data.urgency})
    case_event_add(case=case, kind=CaseEventKind.REQUESTED, actor_id=requested_by_id,
                   message=f"{modality.code} {data.exam} requested ({case.get_urgency_display()})")
    if not modality.teleradiology_eligible:
        _redirect_ultrasound(case)
    else:
        enqueue_routing(case.pk)
    return case, True


def _redirect_ultrasound(case: Case) -> None:
    from apps.regions.selectors import nearest_ultrasound_referrals

    paediatric = (timezone.now().date() - case.patient_birth_date).days < 18 * 365
    refs = nearest_ultrasound_referrals(case.site, paediatric=paediatric) or nearest_ultrasound_referrals(case.site)
    if refs:
        best = refs[0]
        msg = (f"Ultrasound is not read remotely (the radiologist must hold the probe). Nearest ultrasound "
               f"referral: {best.name}, about {best.travel_minutes} min away, tel. {best.phone}.")
        if not best.within_bound:
            msg += f" Warning: beyond the regional {case.site.territory.region.ultrasound_max_travel_minutes}-minute bound."
        data = {"referral_id": best.establishment_id, "travel_minutes": best.travel_minutes,
                "within_bound": best.within_bound}
    else:
        msg = "Ultrasound is not read remotely and no ultrasound referral centre is configured for this region."
        data = {}
    Case.objects.filter(pk=case.pk).update(status=CaseStatus.REDIRECTED, validation_note=msg)
    case.status, case.validation_note = CaseStatus.REDIRECTED, msg
    case_event_add(case=case, kind=CaseEventKind.REDIRECTED, message=msg[:300], data=data)


MATCH_WINDOW = dt.timedelta(hours=12)


@transaction.atomic
def case_attach_study(*, study_id: int) -> Case | None:
    """Match a complete study to its request (accession number first, then patient id + modality + time
    window); a study with no request becomes a case of origin 'dicom' so that it is still read tonight.
    Returns the case to route, or None for ultrasound (stored, flagged, never routed).
    """
    from apps.regions.selectors import modality_for_dicom_code
    from apps.studies.models import Study

    study = Study.objects.select_for_update().select_related("site").get(pk=study_id)
    if study.case_id:
        return study.case
    modality = modality_for_dicom_code(study.modality.split("\\")[0])
    if modality is not None and not modality.teleradiology_eligible:
        return None
    case = case_match_for_study(study, modality_code=modality.code if modality else "")
    now = timezone.now()
    if case is None:
        if modality is None:
            return None
        case = Case.objects.create(
            site=study.site, origin=Origin.DICOM, modality=modality, requested_at=now,
            patient_birth_name=(study.patient_name.split("^")[0] or "UNKNOWN")[:100],
            patient_first_names=(study.patient_name.split("^")[1] if "^" in study.patient_name else "")[:200],
            patient_sex=study.patient_sex if study.patient_sex in ("F", "M") else "U",
            patient_birth_date=study.patient_birth_date or dt.date(1900, 1, 1),
            local_patient_id=study.patient_id, accession_number=study.accession_number,
            clinical_question="(study received without a request: see the requesting site)",
            exam=study.description or modality.label, status=CaseStatus.AWAITING_READING,
            images_complete_at=study.completed_at or now)
        audit_record(action="create", obj=case, patient_data=True, establishment_id=study.site_id,
                     details={"origin": "dicom", "study_uid": study.study_uid})
        case_event_add(case=case, kind=CaseEventKind.IMAGES_COMPLETE,
                       message=f"Study received without request: {study.num_instances} images")
    else:
        updates: dict[str, Any] = {"images_complete_at": study.completed_at or now}
        if case.status in (CaseStatus.ACCEPTED, CaseStatus.AWAITING_VALIDATION, CaseStatus.INFO_REQUESTED):
            updates["status"] = CaseStatus.AWAITING_READING
        Case.objects.filter(pk=case.pk).update(**updates)
        case.refresh_from_db()
        case_event_add(case=case, kind=CaseEventKind.IMAGES_COMPLETE,
                       message=f"Images complete: {study.num_series} series, {study.num_instances} images",
                       data={"study_uid": study.study_uid})
    Study.objects.filter(pk=study.pk).update(case=case)
    return case


def case_match_for_study(study: Any, *, modality_code: str) -> Case | None:
    open_cases = Case.objects.filter(site_id=study.site_id).exclude(
        status__in=[CaseStatus.CANCELLED, CaseStatus.REFUSED, CaseStatus.REDIRECTED, CaseStatus.REPORTED])
    if study.accession_number:
        by_accession = open_cases.filter(accession_number=study.accession_number).order_by("-requested_at").first()
        if by_accession:
            return by_accession
    if study.patient_id and modality_code:
        ref = study.study_datetime or study.first_received_at or timezone.now()
        return (open_cases.filter(local_patient_id=study.patient_id, modality_id=modality_code,
                                  requested_at__gte=ref - MATCH_WINDOW, requested_at__lte=ref + MATCH_WINDOW)
                .filter(studies__isnull=True).order_by("-requested_at").first())
    return None


# --- Validation of the indication -----------------------------------------------------------------------


class ValidationDecision:
    ACCEPT = "accept"
    REFUSE = "refuse"
    ASK_INFO = "ask_info"


def _lock_case(case_id: int) -> Case:
    try:
        return Case.objects.select_for_update().select_related("site", "modality").get(pk=case_id)
    except Case.DoesNotExist as exc:
        raise NotFoundError("This request does not exist.") from exc


def _require_radiologist(user: Any) -> None:
    if getattr(user, "role", "") != "radiologist":
        raise PermissionDeniedError("Only a radiologist can do this.")


@transaction.atomic
def case_validate(*, case_id: int, user: Any, decision: str, protocol: str = "", reason: str = "") -> Case:
    """The on-duty radiologist accepts the indication with a protocol, refuses it with a reason, or asks
    the physician for more information."""
    _require_radiologist(user)
    case = _lock_case(case_id)
    if case.status not in (CaseStatus.AWAITING_VALIDATION, CaseStatus.INFO_REQUESTED):
        raise ConflictError("This request is no longer awaiting validation.")
    now = timezone.now()
    if decision == ValidationDecision.ACCEPT:
        if not protocol.strip():
            raise ApplicationError("Give the protocol to acquire.", code="protocol_required")
        case.status = CaseStatus.AWAITING_READING if case.images_complete_at else CaseStatus.ACCEPTED
        case.protocol, case.validation_note = protocol.strip(), reason.strip()
        kind, message = CaseEventKind.VALIDATED, f"Indication accepted. Protocol: {protocol.strip()}"
    elif decision == ValidationDecision.REFUSE:
        if not reason.strip():
            raise ApplicationError("Give the reason for the refusal.", code="reason_required")
        case.status, case.validation_note = CaseStatus.REFUSED, reason.strip()
        kind, message = CaseEventKind.REFUSED, f"Indication refused: {reason.strip()}"
    elif decision == ValidationDecision.ASK_INFO:
        if not reason.strip():
            raise ApplicationError("Write the question for the physician.", code="question_required")
        case.status, case.validation_note = CaseStatus.INFO_REQUESTED, reason.strip()
        kind, message = CaseEventKind.INFO_REQUESTED, f"More information requested: {reason.strip()}"
    else:
        raise ApplicationError("Unknown decision.", code="bad_decision")
    case.validated_by = user
    case.validated_at = now
    case.save(update_fields=["status", "protocol", "validation_note", "validated_by", "validated_at", "updated_at"])
    audit_record(action=f"validate:{decision}", obj=case, patient_data=True, establishment_id=case.site_id)
    case_event_add(case=case, kind=kind, actor_id=user.pk, message=message, at=now)
    return case


@transaction.atomic
def case_info_provide(*, case_id: int, user: Any, answer: str) -> Case:
    """The physician answers the radiologist's question; the request goes back to validation."""
    case = _lock_case(case_id)
    if case.status != CaseStatus.INFO_REQUESTED:
        raise ConflictError("No information is requested on this request.")
    if not answer.strip():
        raise ApplicationError("Write your answer.", code="answer_required")
    stamp = timezone.localtime().strftime("%d/%m %H:%M")
    case.clinical_context = (case.clinical_context + f"\n[{stamp}] {answer.strip()}").strip()
    case.status = CaseStatus.AWAITING_VALIDATION
    case.save(update_fields=["clinical_context", "status", "updated_at"])
    audit_record(action="info_provide", obj=case, patient_data=True, establishment_id=case.site_id)
    case_event_add(case=case, kind=CaseEventKind.INFO_PROVIDED, actor_id=user.pk,
                   message=f"Information provided: {answer.strip()}")
    return case


# --- Manual matching of a study to a request ---------------------------------------------------------------


@transaction.atomic
def study_match_manual(*, study_id: int, case_id: int, user: Any) -> Case:
    """The site attaches a study that arrived without a matching request to the right request. The case
    the gateway created for the lone study (origin 'dicom') is cancelled, its history pointing to the
    request; the request becomes ready to read and is routed."""
    from apps.studies.models import Study

    study = Study.objects.select_for_update().get(pk=study_id)
    target = _lock_case(case_id)
    if study.site_id != target.site_id:
        raise PermissionDeniedError("The study and the request are not from the same site.")
    if target.origin == Origin.DICOM or target.status not in OPEN_STATUSES:
        raise ConflictError("This request cannot receive images.")
    if target.studies.exists():
        raise ConflictError("This request already has a study.")
    placeholder = None
    if study.case_id:
        placeholder = _lock_case(study.case_id)
        if placeholder.origin != Origin.DICOM:
            raise ConflictError("This study is already matched to a request.")
        if placeholder.claimed_by_id or placeholder.status not in OPEN_STATUSES:
            raise ConflictError("A radiologist is already reading this study; ask them to release it first.")
    now = timezone.now()
    Study.objects.filter(pk=study.pk).update(case=target)
    target.images_complete_at = study.completed_at or now
    if target.status in (CaseStatus.ACCEPTED, CaseStatus.AWAITING_VALIDATION, CaseStatus.INFO_REQUESTED):
        target.status = CaseStatus.AWAITING_READING
    if not target.accession_number and study.accession_number:
        target.accession_number = study.accession_number
    target.save(update_fields=["images_complete_at", "status", "accession_number", "updated_at"])
    audit_record(action="study_match", obj=target, patient_data=True, establishment_id=target.site_id,
                 details={"study_uid": study.study_uid, "placeholder_case": placeholder.pk if placeholder else None})
    case_event_add(case=target, kind=CaseEventKind.IMAGES_COMPLETE, actor_id=user.pk,
                   message=f"Study matched by hand: {study.num_series} series, {study.num_instances} images",
                   data={"study_uid": study.study_uid, "manual": True})
    if placeholder is not None:
        placeholder.status, placeholder.cancelled_at = CaseStatus.CANCELLED, now
        placeholder.save(update_fields=["status", "cancelled_at", "updated_at"])
        case_event_add(case=placeholder, kind=CaseEventKind.CANCELLED, actor_id=user.pk,
                       message=f"Study matched to request #{target.pk}", data={"merged_into": target.pk})
    enqueue_routing(target.pk)
    return target


# --- Claim: exactly one reader -----------------------------------------------------------------------------

CLAIMABLE = (CaseStatus.ACCEPTED, CaseStatus.AWAITING_READING, CaseStatus.IN_PROGRESS)


@transaction.atomic
def case_claim(*, case_id: int, user: Any) -> Case:
    """Lock the case to this reader. Compare-and-set on claimed_by: of two radiologists claiming at the
    same moment exactly one row update succeeds; the other is told who has the case."""
    _require_radiologist(user)
    now = timezone.now()
    won = (Case.objects.filter(pk=case_id, claimed_by__isnull=True, status__in=CLAIMABLE)
           .update(claimed_by=user, claimed_at=now, status=CaseStatus.IN_PROGRESS, updated_at=now))
    case = Case.objects.select_related("claimed_by").get(pk=case_id)
    if not won:
        if case.claimed_by_id == user.pk:
            return case
        if case.claimed_by is not None:
            raise ConflictError(f"Already claimed by {case.claimed_by.display_name}.", code="already_claimed",
                                extra={"claimed_by": case.claimed_by.display_name})
        raise ConflictError("This case cannot be claimed in its current state.", code="not_claimable")
    audit_record(action="claim", obj=case, patient_data=True, establishment_id=case.site_id)
    case_event_add(case=case, kind=CaseEventKind.CLAIMED, actor_id=user.pk,
                   message=f"Claimed by {user.display_name}", at=now)
    return case


@transaction.atomic
def case_release(*, case_id: int, user: Any, reason: str = "") -> Case:
    now = timezone.now()
    released = (Case.objects.filter(pk=case_id, claimed_by=user, status=CaseStatus.IN_PROGRESS)
                .update(claimed_by=None, claimed_at=None, status=CaseStatus.AWAITING_READING, updated_at=now))
    case = Case.objects.get(pk=case_id)
    if not released:
        raise ConflictError("You do not hold this case.", code="not_holder")
    audit_record(action="release", obj=case, patient_data=True, establishment_id=case.site_id)
    case_event_add(case=case, kind=CaseEventKind.RELEASED, actor_id=user.pk,
                   message="Released" + (f": {reason.strip()}" if reason.strip() else ""), at=now)
    return case


@transaction.atomic
def case_hand_off(*, case_id: int, user: Any, to_user_id: int, note: str = "") -> Case:
    """End of shift: pass a claimed case (with its draft) to the next reader."""
    from apps.accounts.models import User

    to_user = User.objects.filter(pk=to_user_id, role="radiologist", is_active=True).first()
    if to_user is None or to_user.pk == user.pk:
        raise ApplicationError("Choose another radiologist.", code="bad_handoff_target")
    now = timezone.now()
    moved = (Case.objects.filter(pk=case_id, claimed_by=user, status=CaseStatus.IN_PROGRESS)
             .update(claimed_by=to_user, claimed_at=now, assigned_to=to_user, updated_at=now))
    case = Case.objects.get(pk=case_id)
    if not moved:
        raise ConflictError("You do not hold this case.", code="not_holder")
    Report.objects.filter(case=case, status=ReportStatus.DRAFT).update(author=to_user)
    audit_record(action="hand_off", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"to": to_user.pk})
    case_event_add(case=case, kind=CaseEventKind.RELEASED, actor_id=user.pk,
                   message=f"Handed off to {to_user.display_name}" + (f": {note.strip()}" if note.strip() else ""),
                   data={"to_user": to_user.pk}, at=now)
    return case


def case_open(*, case: Case, user: Any) -> None:
    """First opening by the reader: a stage timestamp."""
    if case.opened_at is None and case.claimed_by_id == user.pk:
        now = timezone.now()
        if Case.objects.filter(pk=case.pk, opened_at__isnull=True).update(opened_at=now):
            case.opened_at = now
            case_event_add(case=case, kind=CaseEventKind.OPENED, actor_id=user.pk, message="Images opened", at=now)


# --- Report ---------------------------------------------------------------------------------------------

REPORT_FIELDS = ("indication", "technique", "findings", "conclusion")


def report_content_hash(report: Report) -> str:
    payload = {f: getattr(report, f) for f in REPORT_FIELDS}
    payload.update({"critical_finding": report.critical_finding, "case": str(report.case.public_id),
                    "signed_by": report.signed_by_id, "signed_at": report.signed_at.isoformat() if report.signed_at else ""})
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _require_reader(case: Case, user: Any) -> None:
    if case.claimed_by_id != user.pk:
        raise PermissionDeniedError("Claim the case before writing its report.", code="not_claimed")


@transaction.atomic
def report_draft_save(*, case_id: int, user: Any, fields: dict[str, str], template: str = "",
                      critical_finding: bool | None = None) -> Report:
    """Autosave of the draft; a signed report is never changed (compare-and-set on its status)."""
    case = _lock_case(case_id)
    _require_reader(case, user)
    report = Report.objects.filter(case=case).first()
    if report is None:
        report = Report.objects.create(case=case, author=user, template=template)
    if report.status != ReportStatus.DRAFT:
        raise ConflictError("The report is signed: write an addendum.", code="report_signed")
    updates: dict[str, Any] = {f: fields[f] for f in REPORT_FIELDS if f in fields}
    if template:
        updates["template"] = template
    if critical_finding is not None:
        updates["critical_finding"] = critical_finding
    updates["draft_saved_at"] = timezone.now()
    if not Report.objects.filter(pk=report.pk, status=ReportStatus.DRAFT).update(**updates):
        raise ConflictError("The report is signed: write an addendum.", code="report_signed")
    report.refresh_from_db()
    audit_record(action="report_draft", obj=case, patient_data=True, establishment_id=case.site_id)
    return report


@transaction.atomic
def report_sign(*, case_id: int, user: Any) -> Report:
    """Sign: the content is frozen and hashed, the case is reported. A critical finding needs the call to
    the physician logged first."""
    case = _lock_case(case_id)
    _require_reader(case, user)
    report = Report.objects.select_for_update().filter(case=case).first()
    if report is None:
        raise ApplicationError("Write the report before signing it.", code="no_report")
    if report.status != ReportStatus.DRAFT:
        raise ConflictError("The report is already signed.", code="report_signed")
    if not report.conclusion.strip():
        raise ApplicationError("The conclusion is required to sign.", code="conclusion_required")
    if report.critical_finding and not case.critical_calls.exists():
        raise ApplicationError("Critical finding: log your call to the requesting physician before signing.",
                               code="critical_call_required")
    now = timezone.now()
    report.status, report.signed_at, report.signed_by = ReportStatus.SIGNED, now, user
    report.content_sha256 = report_content_hash(report)
    report.save(update_fields=["status", "signed_at", "signed_by", "content_sha256"])
    case.status, case.signed_at = CaseStatus.REPORTED, now
    case.save(update_fields=["status", "signed_at", "updated_at"])
    audit_record(action="report_sign", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"sha256": report.content_sha256})
    case_event_add(case=case, kind=CaseEventKind.REPORT_SIGNED, actor_id=user.pk,
                   message=f"Report signed by {user.display_name}" + (" (critical finding)" if report.critical_finding else ""),
                   data={"sha256": report.content_sha256}, at=now)
    return report


@transaction.atomic
def addendum_add(*, case_id: int, user: Any, text: str) -> Addendum:
    """Correction of a signed report: a new signed, timestamped text; the report itself never changes."""
    _require_radiologist(user)
    case = _lock_case(case_id)
    report = Report.objects.filter(case=case, status=ReportStatus.SIGNED).first()
    if report is None:
        raise ConflictError("Addenda are for signed reports; edit the draft instead.", code="not_signed")
    if not text.strip():
        raise ApplicationError("Write the addendum.", code="text_required")
    addendum = Addendum.objects.create(report=report, text=text.strip(), author=user, signed_at=timezone.now())
    audit_record(action="addendum", obj=case, patient_data=True, establishment_id=case.site_id)
    case_event_add(case=case, kind=CaseEventKind.ADDENDUM, actor_id=user.pk,
                   message=f"Addendum signed by {user.display_name}")
    return addendum


@transaction.atomic
def critical_call_log(*, case_id: int, user: Any, physician_name: str, called_at: dt.datetime | None = None,
                      acknowledged: bool = False, note: str = "") -> CriticalFindingCall:
    _require_radiologist(user)
    case = _lock_case(case_id)
    if not physician_name.strip():
        raise ApplicationError("Name the physician you reached.", code="physician_required")
    call = CriticalFindingCall.objects.create(case=case, called_by=user, physician_name=physician_name.strip(),
                                              called_at=called_at or timezone.now(), acknowledged=acknowledged,
                                              note=note.strip())
    audit_record(action="critical_call", obj=case, patient_data=True, establishment_id=case.site_id)
    case_event_add(case=case, kind=CaseEventKind.CRITICAL_CALL, actor_id=user.pk,
                   message=f"Critical finding call to {call.physician_name}"
                           + (" (acknowledged)" if acknowledged else " (not acknowledged)"))
    return call


# --- Second opinion ---------------------------------------------------------------------------------------


@transaction.atomic
def expert_request_create(*, case_id: int, user: Any, line_id: int, question: str) -> ExpertRequest:
    """Send the case to a sub-specialty referral line; the expert on duty on that line gets it."""
    from apps.rosters.models import LineKind, OnCallLine

    _require_radiologist(user)
    case = _lock_case(case_id)
    line = OnCallLine.objects.filter(pk=line_id, kind=LineKind.REFERRAL, active=True).first()
    if line is None:
        raise ApplicationError("Choose a sub-specialty referral line.", code="bad_line")
    if not question.strip():
        raise ApplicationError("Write the question for the expert.", code="question_required")
    now = timezone.now()
    from apps.routing.selectors import on_duty_for_line

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
    _require_radiologist(user)
    if not opinion.strip():
        raise ApplicationError("Write your opinion.", code="opinion_required")
    now = timezone.now()
    done = (ExpertRequest.objects.filter(pk=expert_request_id, status=ExpertRequestStatus.OPEN)
            .filter(models.Q(expert=user) | models.Q(expert__isnull=True))
            .update(opinion=opinion.strip(), status=ExpertRequestStatus.ANSWERED, answered_at=now, expert=user))
    if not done:
        raise ConflictError("This expert request is closed or addressed to another expert.")
    req = ExpertRequest.objects.select_related("case").get(pk=expert_request_id)
    audit_record(action="expert_opinion", obj=req.case, patient_data=True, establishment_id=req.case.site_id)
    case_event_add(case=req.case, kind=CaseEventKind.EXPERT_ANSWERED, actor_id=user.pk,
                   message=f"Expert opinion given by {user.display_name}", at=now)
    return req


# --- Routing actions on behalf of the radiologist (apps.routing owns the rules) ---------------------------


def assignment_action(*, action: str, case_id: int, user: Any, reason: str = "") -> None:
    """Acknowledge, decline or hand back an assignment through the routing engine."""
    from apps.routing import services as routing

    if action == "acknowledge":
        routing.assignment_acknowledge(case_id=case_id, user=user)
        return
    if not reason.strip():
        raise ApplicationError("Give a reason.", code="reason_required")
    if action == "decline":
        routing.assignment_decline(case_id=case_id, user=user, reason=reason.strip())
    elif action == "hand_back":
        routing.assignment_hand_back(case_id=case_id, user=user, reason=reason.strip())
    else:
        raise ApplicationError("Unknown action.", code="bad_action")
