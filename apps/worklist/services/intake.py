"""Requests in and out: creation (web form or RIS), ultrasound redirection, attaching a study, cancellation."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, ConflictError, NotFoundError
from apps.regions.models import Establishment, Modality
from apps.regions.selectors import (
    modality_for_dicom_code,
    nearest_ultrasound_referrals,
    ultrasound_referral_for,
)
from apps.regions.ultrasound import CHILD_UNDER_YEARS, NONE_SUITABLE
from apps.studies.models import Study
from apps.worklist.identity import age_years, identity_errors
from apps.worklist.justification import images_arrival
from apps.worklist.models import OPEN_STATUSES, Case, CaseEventKind, CaseStatus, Origin
from apps.worklist.priors.services import prior_arrived, priors_query_request
from apps.worklist.services.common import (
    case_acquired_before_validation_record,
    case_event_add,
    enqueue_routing,
)


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

    Refusals (ApplicationError): the patient opposes tele-medicine. An identity that does not hold together
    (apps.worklist.identity: INS against sex and date of birth, place of birth, a future date of birth) is a
    ValidationError naming the fields, as the web form shows it. Ultrasound is not routed: the case
    is stored as redirected with the nearest ultrasound referral centre named in its timeline.
    """
    if idempotency_key:
        existing = Case.objects.filter(site_id=site_id, idempotency_key=idempotency_key).first()
        if existing:
            return existing, False
    if data.opposes_telemedicine:
        raise ApplicationError(
            _("The patient opposes tele-medicine: this request cannot be sent for remote interpretation. "
              "Organise an on-site reading or a transfer."), code="patient_opposes_telemedicine")
    modality = Modality.objects.filter(code=data.modality_code).first()
    if modality is None:
        raise ApplicationError(_("Unknown modality %(code)r.") % {"code": data.modality_code},
                               code="unknown_modality")
    problems = identity_errors(sex=data.patient_sex, birth_date=data.patient_birth_date,
                               birth_place=data.patient_birth_place, ins=data.patient_ins,
                               today=timezone.localdate())
    if problems:
        raise ValidationError(problems)
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


def _redirect_ultrasound(case: Case, *, data: dict[str, Any] | None = None) -> None:
    """Store the case as redirected, naming the nearest suitable ultrasound centre (apps.regions.ultrasound)."""
    child = age_years(case.patient_birth_date, timezone.localdate()) < CHILD_UNDER_YEARS
    choice = ultrasound_referral_for(case.site, child=child)
    bound = case.site.territory.region.ultrasound_max_travel_minutes
    best = choice.centre
    if best is not None:
        msg = (f"Ultrasound is not read remotely (the radiologist must hold the probe). Nearest ultrasound "
               f"referral: {best.name}, about {best.travel_minutes} min away, tel. {best.phone}.")
        if not choice.within_bound:
            msg += f" Warning: beyond the regional {bound}-minute bound."
        if choice.alternative is not None:
            msg += (f" Paediatric ultrasound pole: {choice.alternative.name}, about "
                    f"{choice.alternative.travel_minutes} min away.")
        event_data = {"referral_id": best.establishment_id, "referral": best.name, "phone": best.phone,
                      "travel_minutes": best.travel_minutes, "within_bound": choice.within_bound, "bound": bound,
                      "child": child}
        if choice.alternative is not None:
            event_data.update(paediatric_pole_id=choice.alternative.establishment_id,
                              paediatric_pole=choice.alternative.name,
                              paediatric_pole_minutes=choice.alternative.travel_minutes)
    elif choice.warning == NONE_SUITABLE and _has_ultrasound_centre(case):
        msg = "Ultrasound is not read remotely and no ultrasound referral centre of this region takes this patient."
        event_data = {"child": child}
    else:
        msg = "Ultrasound is not read remotely and no ultrasound referral centre is configured for this region."
        event_data = {"child": child}
    event_data.update(data or {})
    Case.objects.filter(pk=case.pk).update(status=CaseStatus.REDIRECTED, validation_note=msg)
    case.status, case.validation_note = CaseStatus.REDIRECTED, msg
    case_event_add(case=case, kind=CaseEventKind.REDIRECTED, message=msg[:300], data=event_data)


def _has_ultrasound_centre(case: Case) -> bool:
    return bool(nearest_ultrasound_referrals(case.site))


MATCH_WINDOW = dt.timedelta(hours=12)


@transaction.atomic
def case_attach_study(*, study_id: int) -> Case | None:
    """Match a complete study to its request (accession number first, then patient id + modality + time
    window); a study with no request becomes a case of origin 'dicom' so that it is still read tonight.
    Returns the case to route, or None for ultrasound (stored, flagged, never routed).
    """
    # Lock order (docs/locking.md): the study, then its case. ``of=("self",)``: without it PostgreSQL also
    # locks the joined establishment FOR UPDATE, which every insert referencing that site (the gateway's next
    # study, a case, an incident) must wait for: the deadlock of issue 15.
    study = Study.objects.select_for_update(of=("self",)).select_related("site").get(pk=study_id)
    if study.case_id:
        return study.case
    if prior_arrived(study=study):  # a prior retrieved from the site PACS for a case: never a case of its own
        return None
    modality = modality_for_dicom_code(study.modality.split("\\")[0])
    if study.ultrasound or (modality is not None and not modality.teleradiology_eligible):
        _ultrasound_study_redirect(study, modality)
        return None
    case = case_match_for_study(study, modality_code=modality.code if modality else "")
    now = timezone.now()
    if case is None:
        if modality is None:
            return None
        case = Case.objects.create(
            site=study.site, origin=Origin.DICOM, modality=modality, requested_at=now, **_dicom_patient_fields(study),
            clinical_question="(study received without a request: see the requesting site)",
            exam=study.description or modality.label, status=CaseStatus.AWAITING_READING,
            images_complete_at=study.completed_at or now)
        audit_record(action="create", obj=case, patient_data=True, establishment_id=study.site_id,
                     details={"origin": "dicom", "study_uid": study.study_uid})
        case_event_add(case=case, kind=CaseEventKind.IMAGES_COMPLETE,
                       message=f"Study received without request: {study.num_instances} images")
        case_acquired_before_validation_record(case=case, reading_held=False, no_request=True)
    else:
        arrival = images_arrival(status=case.status, urgency=case.urgency)
        Case.objects.filter(pk=case.pk).update(images_complete_at=study.completed_at or now, status=arrival.status)
        case.refresh_from_db()
        case_event_add(case=case, kind=CaseEventKind.IMAGES_COMPLETE,
                       message=f"Images complete: {study.num_series} series, {study.num_instances} images",
                       data={"study_uid": study.study_uid})
        if arrival.deviation:
            case_acquired_before_validation_record(case=case, reading_held=arrival.reading_held)
    Study.objects.filter(pk=study.pk).update(case=case)
    priors_query_request(case_id=case.pk, site_id=case.site_id)  # the site PACS: the patient's earlier studies
    return case


def _ultrasound_study_redirect(study: Study, modality: Modality | None) -> Case | None:
    """An ultrasound study came by DICOM: it is never routed, but nobody may miss it. It joins the redirected
    ultrasound request it belongs to, or becomes a redirected case of origin 'dicom' whose timeline names the
    centre to send the patient to (routing tells the site and the coordinator: apps.routing.redirections)."""
    modality = modality if modality is not None and not modality.teleradiology_eligible else (
        Modality.objects.filter(teleradiology_eligible=False).order_by("code").first())
    if modality is None:
        return None  # no ultrasound in the catalogue: the gateway's incident is all there is
    case = _redirected_request_for(study, modality_code=modality.code)
    if case is not None:
        Study.objects.filter(pk=study.pk).update(case=case)
        case_event_add(case=case, kind=CaseEventKind.IMAGES_COMPLETE,
                       message=f"Ultrasound study received by DICOM for this redirected request: "
                               f"{study.num_instances} images", data={"study_uid": study.study_uid})
        return case
    case = Case.objects.create(
        site=study.site, origin=Origin.DICOM, modality=modality, requested_at=timezone.now(),
        status=CaseStatus.REDIRECTED, **_dicom_patient_fields(study),
        clinical_question="(study received without a request: see the requesting site)",
        exam=study.description or modality.label, images_complete_at=study.completed_at or timezone.now())
    audit_record(action="create", obj=case, patient_data=True, establishment_id=study.site_id,
                 details={"origin": "dicom", "study_uid": study.study_uid, "ultrasound": True})
    Study.objects.filter(pk=study.pk).update(case=case)
    case_event_add(case=case, kind=CaseEventKind.IMAGES_COMPLETE,
                   message=f"Study received without request: {study.num_instances} images")
    _redirect_ultrasound(case, data={"origin": Origin.DICOM, "study_uid": study.study_uid})
    return case


def _dicom_patient_fields(study: Study) -> dict[str, Any]:
    return {"patient_birth_name": (study.patient_name.split("^")[0] or "UNKNOWN")[:100],
            "patient_first_names": (study.patient_name.split("^")[1] if "^" in study.patient_name else "")[:200],
            "patient_sex": study.patient_sex if study.patient_sex in ("F", "M") else "U",
            "patient_birth_date": study.patient_birth_date or dt.date(1900, 1, 1),
            "local_patient_id": study.patient_id, "accession_number": study.accession_number}


def _redirected_request_for(study: Study, *, modality_code: str) -> Case | None:
    """The ultrasound request typed for this study (already redirected): by accession number, else by patient
    id within the matching window."""
    cases = Case.objects.filter(site_id=study.site_id, modality_id=modality_code, status=CaseStatus.REDIRECTED,
                                studies__isnull=True).exclude(origin=Origin.DICOM)
    if study.accession_number:
        found = cases.filter(accession_number=study.accession_number).order_by("-requested_at").first()
        if found:
            return found
    if study.patient_id:
        ref = study.study_datetime or study.first_received_at or timezone.now()
        return (cases.filter(local_patient_id=study.patient_id, requested_at__gte=ref - MATCH_WINDOW,
                             requested_at__lte=ref + MATCH_WINDOW).order_by("-requested_at").first())
    return None


def case_attach_complete_study(*, study_id: int) -> int | None:
    """``case_attach_study`` as the studies' hook wants it (apps.studies.events.study_case_attach): the case id."""
    case = case_attach_study(study_id=study_id)
    return case.pk if case is not None else None


def case_late_images_record(*, case_id: int, study_uid: str, series_uid: str, label: str) -> None:
    """A series of the case's study arrived after completion (apps.studies.events.study_late_images): flag the
    case and tell whoever holds it on the timeline. The case is not routed again."""
    Case.objects.filter(pk=case_id).update(late_images=True)
    case = Case.objects.get(pk=case_id)
    case_event_add(case=case, kind=CaseEventKind.LATE_IMAGES,
                   message=f"Late images received after completion: {label}",
                   data={"study_uid": study_uid, "series_uid": series_uid})


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


# --- Cancellation (a RIS or the requesting site) ------------------------------------------------------------

@transaction.atomic
def case_cancel(*, case_id: int, user_or_actor: Any = None, reason: str = "") -> Case:
    """Cancel an open request (compare-and-set on the status: a report signed meanwhile wins)."""
    now = timezone.now()
    updated = Case.objects.filter(pk=case_id, status__in=OPEN_STATUSES).update(
        status=CaseStatus.CANCELLED, cancelled_at=now)
    case = Case.objects.filter(pk=case_id).first()
    if case is None:
        raise NotFoundError(_("No such request."))
    if not updated:
        raise ConflictError(_("The request cannot be cancelled: it is %(status)s.")
                            % {"status": str(case.get_status_display()).lower()},
                            code="not_cancellable", extra={"status": case.status})
    actor_id = getattr(user_or_actor, "user_id", None) if user_or_actor is not None else None
    if actor_id is None and getattr(user_or_actor, "is_authenticated", False):
        actor_id = getattr(user_or_actor, "pk", None)
    message = "Request cancelled" + (f": {reason}" if reason else "")
    case_event_add(case=case, kind=CaseEventKind.CANCELLED, actor_id=actor_id, message=message,
                   data={"reason": reason[:300]}, at=now)
    audit_record(action="cancel", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"reason": reason[:300]})
    return case
