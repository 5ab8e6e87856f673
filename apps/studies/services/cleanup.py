"""Study and series rows left without an image (a refused or failed first image): removed, never completed."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import DatabaseError, connection, transaction
from django.db.models import Exists, OuterRef, Q

from apps.audit.services import audit_record
from apps.studies.models import Instance, Series, Study, StudyStatus

log = logging.getLogger(__name__)


def _empty_studies() -> Q:
    return Q(status=StudyStatus.RECEIVING, num_instances=0) & ~Q(Exists(Instance.objects.filter(study=OuterRef("pk"))))


def study_series_discard_empty(*, study_id: int, series_id: int | None = None, quiet: bool = False) -> bool:
    """Remove the series (if it has no image) and the study (if it has none and still receives) that an image's
    refusal left behind. An image of another association racing this finds its rows gone and creates them again
    (the gateway retries a vanished series). Returns True if the study was removed. ``quiet``: a database error is
    logged, not raised (the reconciler removes the study once quiet: ``studies_empty_discard``)."""
    if quiet:
        try:
            return study_series_discard_empty(study_id=study_id, series_id=series_id)
        except DatabaseError:
            log.warning("could not remove the empty study %s", study_id, exc_info=True)
            connection.close()
            return False
    with transaction.atomic():
        if series_id is not None:
            Series.objects.filter(pk=series_id, num_instances=0).exclude(
                Exists(Instance.objects.filter(series=OuterRef("pk")))).delete()
        study = Study.objects.select_for_update().filter(_empty_studies(), pk=study_id).first()
        if study is None:
            return False
        if Series.objects.filter(study_id=study_id).exclude(num_instances=0).exists():
            return False
        audit_record(action="delete", obj=study, patient_data=True, establishment_id=study.site_id,
                     details={"event": "empty_study_discarded", "study_uid": study.study_uid})
        study.delete()
    return True


def studies_empty_discard(*, cutoff: dt.datetime, now: dt.datetime) -> list[int]:
    """Studies still receiving, quiet since ``cutoff``, that no open association holds and that have no image:
    left by a first image that failed after its study row was written. They are removed, never completed."""
    ids = list(Study.objects.filter(_empty_studies(), last_received_at__lt=cutoff)
               .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now)).values_list("pk", flat=True)[:200])
    return [i for i in ids if study_series_discard_empty(study_id=i)]
