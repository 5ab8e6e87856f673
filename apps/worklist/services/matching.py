"""Manual matching of a study to a request by a radiologist."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import audit_record
from apps.core.errors import ConflictError, PermissionDeniedError
from apps.studies.models import Study
from apps.worklist.justification import images_arrival
from apps.worklist.models import OPEN_STATUSES, Case, CaseEventKind, CaseStatus, Origin
from apps.worklist.services.common import (
    case_acquired_before_validation_record,
    case_event_add,
    enqueue_routing,
    lock_case,
)

# --- Manual matching of a study to a request ---------------------------------------------------------------


@transaction.atomic
def study_match_manual(*, study_id: int, case_id: int, user: Any) -> Case:
    """The site attaches a study that arrived without a matching request to the right request. The case
    the gateway created for the lone study (origin 'dicom') is cancelled, its history pointing to the
    request; the request becomes ready to read and is routed."""
    study = Study.objects.select_for_update(of=("self",)).get(pk=study_id)  # study before case: docs/locking.md
    target = lock_case(case_id)
    if study.site_id != target.site_id:
        raise PermissionDeniedError(_("The study and the request are not from the same site."))
    if target.origin == Origin.DICOM or target.status not in OPEN_STATUSES:
        raise ConflictError(_("This request cannot receive images."))
    if target.studies.exists():
        raise ConflictError(_("This request already has a study."))
    placeholder = None
    if study.case_id:
        placeholder = lock_case(study.case_id)
        if placeholder.origin != Origin.DICOM:
            raise ConflictError(_("This study is already matched to a request."))
        if placeholder.claimed_by_id or placeholder.status not in OPEN_STATUSES:
            raise ConflictError(_("A radiologist is already reading this study; ask them to release it first."))
    now = timezone.now()
    Study.objects.filter(pk=study.pk).update(case=target)
    target.images_complete_at = study.completed_at or now
    arrival = images_arrival(status=target.status, urgency=target.urgency)
    target.status = arrival.status
    if not target.accession_number and study.accession_number:
        target.accession_number = study.accession_number
    target.save(update_fields=["images_complete_at", "status", "accession_number", "updated_at"])
    audit_record(action="study_match", obj=target, patient_data=True, establishment_id=target.site_id,
                 details={"study_uid": study.study_uid, "placeholder_case": placeholder.pk if placeholder else None})
    case_event_add(case=target, kind=CaseEventKind.IMAGES_COMPLETE, actor_id=user.pk,
                   message=f"Study matched by hand: {study.num_series} series, {study.num_instances} images",
                   data={"study_uid": study.study_uid, "manual": True})
    if arrival.deviation:
        case_acquired_before_validation_record(case=target, reading_held=arrival.reading_held, actor_id=user.pk)
    if placeholder is not None:
        placeholder.status, placeholder.cancelled_at = CaseStatus.CANCELLED, now
        placeholder.save(update_fields=["status", "cancelled_at", "updated_at"])
        case_event_add(case=placeholder, kind=CaseEventKind.CANCELLED, actor_id=user.pk,
                       message=f"Study matched to request #{target.pk}", data={"merged_into": target.pk})
    enqueue_routing(target.pk)
    return target
