"""Study and series rows left without an image (a refused or failed first image): removed, never completed."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable

from django.db import DatabaseError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q

from apps.audit.services import audit_record
from apps.studies.events import study_incident
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


def instance_unrecord(*, study_id: int, series_id: int, sop_instance_uid: str, rel_path: str,
                      still_missing: Callable[[], bool] | None = None) -> bool:
    """Remove an instance row whose file did not become durable, and its counts. False if it was not there, or if
    ``still_missing`` (asked once the row is locked) says the file is there after all: a resend of the image
    linked it meanwhile, and its acknowledgement relies on this row."""
    with transaction.atomic():
        row = (Instance.objects.select_for_update(of=("self",))
               .filter(sop_instance_uid=sop_instance_uid, path=rel_path).values_list("pk", flat=True).first())
        if row is None or (still_missing is not None and not still_missing()):
            return False
        Instance.objects.filter(pk=row).delete()
        Series.objects.filter(pk=series_id).update(num_instances=F("num_instances") - 1)
        Study.objects.filter(pk=study_id).update(num_instances=F("num_instances") - 1)
    return True


def instances_unstored_remove(*, exists: Callable[[str], bool], after_id: int, now: dt.datetime,
                              grace_seconds: float, max_removals: int, batch: int = 5000) -> tuple[list[str], int]:
    """Rows of images whose file is not on the disk, among the rows after ``after_id`` received more than
    ``grace_seconds`` ago: the gateway commits an image's row while its file is flushed, so a process that died
    between the two left a row without a file (never acknowledged: the sender sends the image again). Such rows
    are removed with their counts, audited and reported; ``exists`` says whether a stored path is on the disk.
    At most one image per association can be caught so: more than ``max_removals`` rows without a file in one
    sweep is not a crash but a storage root that is not the one the rows were written to (a volume not mounted,
    a wrong PDS_DICOM_STORAGE_ROOT): nothing is removed, a critical incident says so. Returns the removed SOP
    Instance UIDs and the last id checked (the next call starts after it; a row too recent to judge stops the
    walk there)."""
    cutoff = now - dt.timedelta(seconds=grace_seconds)
    rows = list(Instance.objects.filter(pk__gt=after_id).order_by("pk")
                .values_list("pk", "received_at", "path", "sop_instance_uid", "series_id", "study_id")[:batch])
    missing = []
    last = after_id
    for row in rows:
        if row[1] > cutoff:
            break
        last = row[0]
        if not exists(row[2]):
            missing.append(row)
    if len(missing) > max_removals:
        log.error("%s image rows without their file: storage root not the one they were written to? Nothing removed",
                  len(missing))
        study_incident(kind="other", severity="critical",
                       summary=f"{len(missing)} recent images recorded in the database are not under the storage "
                               "root: nothing was removed; check that the image volume is mounted and "
                               "PDS_DICOM_STORAGE_ROOT",
                       details={"paths": [r[2] for r in missing[:20]]})
        return [], last
    removed: list[str] = []
    for _pk, _received_at, path, sop_uid, series_id, study_id in missing:
        if not instance_unrecord(study_id=study_id, series_id=series_id, sop_instance_uid=sop_uid, rel_path=path,
                                 still_missing=functools.partial(_missing, exists, path)):
            continue
        removed.append(sop_uid)
        study = Study.objects.filter(pk=study_id).first()
        if study is not None:
            with transaction.atomic():
                audit_record(action="delete", obj=study, patient_data=True, establishment_id=study.site_id,
                             details={"event": "unstored_image_removed", "sop_instance_uid": sop_uid})
                study_incident(kind="other", establishment_id=study.site_id, case_id=study.case_id, study_id=study_id,
                               summary="An image recorded while the gateway stopped, whose file never reached the "
                                       "disk, was removed (never acknowledged: the sender sends it again)",
                               details={"sop_instance_uid": sop_uid, "path": path})
    return removed, last


def _missing(exists: Callable[[str], bool], path: str) -> bool:
    return not exists(path)


def instances_sweep_start(*, window: int = 1000) -> int:
    """Where the sweep starts after a restart: the last ``window`` rows, far more than the images in flight when
    the gateway stopped (one per association), whatever the time since."""
    last = Instance.objects.order_by("-pk").values_list("pk", flat=True).first()
    return max(0, (last or 0) - window)
