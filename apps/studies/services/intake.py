"""The study, series and instance rows of received images, late series, and quarantined conflicting duplicates."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, connections, transaction
from django.db.models import F
from psycopg import pq

from apps.audit.services import audit_record
from apps.studies.events import study_incident, study_late_images
from apps.studies.models import Instance, QuarantinedInstance, Series, Study, StudyStatus
from apps.studies.services.cleanup import instance_unrecord
from apps.studies.services.pgcommit import commit_while, dollar_placeholders

# StudyDate/StudyTime outside these bounds is a modality's wrong clock or a placeholder (00010101, 99991231):
# the image is kept, its study gets no date. A study before 1900 does not exist; one more than a day ahead
# of its arrival neither. Europe/Paris, the modality's clock, had no whole-minute offset before 1911 either.
STUDY_DATE_MIN = dt.date(1900, 1, 1)
STUDY_DATE_AHEAD = dt.timedelta(days=1)


def study_datetime_plausible(value: dt.datetime | None, *, now: dt.datetime) -> dt.datetime | None:
    """``value`` if a study could have been acquired then, else None."""
    if value is None or value.date() < STUDY_DATE_MIN or value > now + STUDY_DATE_AHEAD:
        return None
    return value


def _study_datetime(meta: Any, *, now: dt.datetime) -> dt.datetime | None:
    from apps.regions.calendar import PARIS

    date = meta.study_date
    if date is None or date < STUDY_DATE_MIN or date > (now + STUDY_DATE_AHEAD).date():
        return None  # decided on the date first: 0001-01-01 00:00 in Paris is before datetime.min in UTC
    value = dt.datetime.combine(date, meta.study_time or dt.time(0, 0), tzinfo=PARIS).astimezone(dt.UTC)
    return study_datetime_plausible(value, now=now)


@dataclass(frozen=True)
class SeriesRef:
    study_id: int
    series_id: int


class StudyOfAnotherSite(Exception):
    """An image of a study another establishment sent: refused (a site adds images to its own studies only)."""


def _study_of(study_uid: str, site_id: int) -> int | None:
    found = Study.objects.filter(study_uid=study_uid).values_list("pk", "site_id").first()
    if found is not None and found[1] != site_id:
        raise StudyOfAnotherSite(f"study {study_uid} was sent by another establishment")
    return found[0] if found is not None else None


def study_series_ensure(*, site_id: int, calling_ae: str, meta: Any, now: dt.datetime) -> SeriesRef:
    """The study and series rows for an instance, created on their first image (race-safe). Raises
    StudyOfAnotherSite for an image of a study another establishment sent."""
    from apps.regions.selectors import modality_for_dicom_code

    study_id = _study_of(meta.study_uid, site_id)
    if study_id is None:
        modality = modality_for_dicom_code(meta.modality)
        ultrasound = meta.modality == "US" or (modality is not None and not modality.teleradiology_eligible)
        try:
            with transaction.atomic():
                study = Study.objects.create(
                    study_uid=meta.study_uid, site_id=site_id, calling_ae=calling_ae[:16],
                    patient_name=meta.patient_name[:200], patient_id=meta.patient_id[:64],
                    patient_id_issuer=meta.patient_id_issuer[:64],
                    other_patient_ids=[{"id": o.value, "issuer": o.issuer, "type": o.type}
                                       for o in meta.other_patient_ids],
                    patient_birth_date=meta.patient_birth_date, patient_sex=meta.patient_sex[:1],
                    accession_number=meta.accession_number[:64], modality=meta.modality[:16],
                    study_datetime=_study_datetime(meta, now=now), body_part=meta.body_part[:64],
                    description=meta.study_description[:200], station_name=meta.station_name[:64],
                    referring_physician=meta.referring_physician[:200], first_received_at=now,
                    last_received_at=now, ultrasound=ultrasound)
                audit_record(action="receive", obj=study, patient_data=True, establishment_id=site_id,
                             details={"calling_ae": calling_ae, "study_uid": meta.study_uid,
                                      "modality": meta.modality, "ultrasound": ultrasound})
                study_id = study.pk
        except IntegrityError:  # another association created it first
            study_id = _study_of(meta.study_uid, site_id)
            if study_id is None:
                raise
    series_id = Series.objects.filter(series_uid=meta.series_uid).values_list("pk", flat=True).first()
    if series_id is None:
        try:
            with transaction.atomic():
                series_id = Series.objects.create(
                    study_id=study_id, series_uid=meta.series_uid, number=meta.series_number,
                    modality=meta.modality[:16], description=meta.series_description[:200],
                    body_part=meta.body_part[:64]).pk
                Study.objects.filter(pk=study_id).update(num_series=F("num_series") + 1)
        except IntegrityError:
            series_id = Series.objects.filter(series_uid=meta.series_uid).values_list("pk", flat=True).get()
    return SeriesRef(study_id=study_id, series_id=series_id)


def instance_record(*, ref: SeriesRef, meta: Any, rel_path: str, size: int, sha256: str,
                    now: dt.datetime, durable: Callable[[], object] | None = None,
                    lease_until: dt.datetime | None = None) -> bool:
    """Record an instance. Returns True if it arrived after the study was complete.

    ``lease_until``: the association delivering it holds the study (still receiving) until then, written by
    the same statement (see ``Study.lease_until``); None leaves the study's lease as it is.

    ``durable`` is the caller's wait for the file to be durably on disk: the call returns only after it did, and
    if it raises nothing stays recorded.

    Raises IntegrityError, recording nothing, if the SOP Instance UID is already recorded (the caller
    resolves the duplicate) or the series row is gone. On PostgreSQL, outside a transaction (the
    gateway), the usual case -- an image of a study still receiving -- is one statement committed while
    ``durable`` waits (``_instance_insert_receiving_pg``); a late image, every image inside a caller's
    transaction and every image on SQLite is one ordinary transaction, after ``durable``.
    """
    conn = connections[DEFAULT_DB_ALIAS]  # one lookup: each access through the proxy costs a thread-local get
    args = {"ref": ref, "meta": meta, "rel_path": rel_path, "size": size, "sha256": sha256, "now": now,
            "lease_until": lease_until}
    if conn.vendor == "postgresql" and not conn.in_atomic_block:
        if _instance_insert_receiving_pg(conn, durable=durable, **args):
            return False
    else:
        if durable is not None:
            durable()
        if conn.vendor == "postgresql":
            with transaction.atomic():  # a savepoint: a failed statement must not abort the caller's transaction
                if _instance_insert_receiving_pg(conn, durable=None, **args):
                    return False
    return _instance_record_atomic(**args)


@transaction.atomic
def _instance_record_atomic(*, ref: SeriesRef, meta: Any, rel_path: str, size: int, sha256: str,
                            now: dt.datetime, lease_until: dt.datetime | None) -> bool:
    Instance.objects.create(series_id=ref.series_id, study_id=ref.study_id, sop_instance_uid=meta.sop_instance_uid,
                            sop_class_uid=meta.sop_class_uid, transfer_syntax_uid=meta.transfer_syntax_uid,
                            instance_number=meta.instance_number, path=rel_path, size=size, sha256=sha256,
                            received_at=now)
    if not Series.objects.filter(pk=ref.series_id).update(num_instances=F("num_instances") + 1):
        raise IntegrityError(f"series {ref.series_id} does not exist")
    # Compare-and-set against the completion of the quiet period (see the invariants in apps.studies.services).
    lease = {} if lease_until is None else {"lease_until": lease_until}
    extended = bool(Study.objects.filter(pk=ref.study_id, status=StudyStatus.RECEIVING).update(
        num_instances=F("num_instances") + 1, last_received_at=now, **lease))
    if not extended:
        Study.objects.filter(pk=ref.study_id).update(num_instances=F("num_instances") + 1, last_received_at=now)
        _late_images_flag(study_id=ref.study_id, series_id=ref.series_id)
    return not extended


_RECEIVING_INSERT = f"""
    WITH stu AS (
        UPDATE {Study._meta.db_table} SET num_instances = num_instances + 1, last_received_at = %s,
            lease_until = COALESCE(%s::timestamptz, lease_until)
        WHERE id = %s AND status = %s RETURNING id),
    ins AS (
        INSERT INTO {Instance._meta.db_table} (series_id, study_id, sop_instance_uid, sop_class_uid,
            transfer_syntax_uid, instance_number, path, size, sha256, received_at)
        SELECT %s, stu.id, %s, %s, %s, %s, %s, %s, %s, %s FROM stu RETURNING series_id),
    ser AS (
        UPDATE {Series._meta.db_table} SET num_instances = num_instances + 1
        WHERE id IN (SELECT series_id FROM ins) RETURNING id)
    SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM ser)
"""
_RECEIVING_INSERT_PQ = dollar_placeholders(_RECEIVING_INSERT)


def _instance_insert_receiving_pg(conn: Any, *, ref: SeriesRef, meta: Any, rel_path: str, size: int, sha256: str,
                                  now: dt.datetime, lease_until: dt.datetime | None,
                                  durable: Callable[[], object] | None) -> bool:
    """One statement (data-modifying CTEs): extend the study's quiet period if it is still receiving
    (compare-and-set, the row lock orders it against completion), and only then insert the instance and
    count it in its series. Returns False, having changed nothing, when the study is no longer
    receiving: the caller takes the late-image path. A duplicate UID raises IntegrityError; so does a
    series row that is gone (the deferred foreign key fails the commit, or the check below).

    With ``durable`` (outside any transaction, the gateway): the statement is sent in autocommit and ``durable``
    waits for the file's flush while the server executes and commits it (``pgcommit.commit_while``): the two
    flushes happen at the same time; the caller acknowledges the image only once both are done. If ``durable`` raises, the row
    it may have committed is removed again (``instance_unrecord``) and the error is raised: nothing is
    recorded. If the process dies between the two, the row is left without its file: the gateway's sweep
    (``instances_unstored_remove``) removes it before the study can complete. The statement is prepared once
    per connection on the underlying psycopg connection (Django's client-side binding re-quoted the parameters of
    every image, 0.4 ms of CPU here); errors are still Django's."""
    params = [now, lease_until, ref.study_id, StudyStatus.RECEIVING.value, ref.series_id, meta.sop_instance_uid,
              meta.sop_class_uid, meta.transfer_syntax_uid, meta.instance_number, rel_path, size, sha256, now]
    conn.ensure_connection()
    raw = conn.connection
    failed: BaseException | None = None
    with conn.wrap_database_errors:
        if durable is None:
            with psycopg.Cursor(raw) as cur:
                cur.execute(_RECEIVING_INSERT, params, prepare=True)
                row = cur.fetchone()
        else:
            if raw.info.transaction_status != pq.TransactionStatus.IDLE or not raw.autocommit:
                raise AssertionError("the gateway's statement runs outside any transaction")
            done = commit_while(raw, "pds_instance_receiving", _RECEIVING_INSERT_PQ, params, durable)
            failed, committing = done.wait_error, done.sent_at
            if done.statement_error is not None:
                if failed is not None:
                    raise failed  # nothing was committed; the disk's error is the one to report
                raise done.statement_error
            row = (int(done.row[0] or 0), int(done.row[1] or 0)) if done.row is not None else None
    assert row is not None
    inserted, series_counted = row
    if durable is not None:
        if failed is not None:
            if inserted:
                instance_unrecord(study_id=ref.study_id, series_id=ref.series_id, sop_instance_uid=meta.sop_instance_uid,
                                  rel_path=rel_path)
            raise failed
        if inserted and time.monotonic() - committing > settings.PDS_DICOM_UNSTORED_GRACE_SECONDS / 2:
            # The disk took so long that the sweep may have taken the row for one whose file never came: the
            # image is acknowledged only if its row is still there (else the sender is asked to send it again).
            if not Instance.objects.filter(sop_instance_uid=meta.sop_instance_uid, path=rel_path).exists():
                raise DatabaseError(f"{meta.sop_instance_uid}: row removed while its file was being flushed")
    if inserted and not series_counted:  # only reachable inside a transaction (deferred FK not yet checked)
        raise IntegrityError(f"series {ref.series_id} does not exist")
    return bool(inserted)


def _late_images_flag(*, study_id: int, series_id: int) -> None:
    """First image of a series after completion: flag series, study and case, tell whoever holds the case.
    The study is not routed again."""
    if not Series.objects.filter(pk=series_id, received_after_completion=False).update(received_after_completion=True):
        return
    Study.objects.filter(pk=study_id).update(late_series=True)
    study = Study.objects.get(pk=study_id)
    series = Series.objects.get(pk=series_id)
    audit_record(action="update", obj=study, patient_data=True, establishment_id=study.site_id,
                 details={"event": "late_series", "series_uid": series.series_uid, "series_number": series.number})
    label = f"series {series.number or ''} {series.description}".strip()
    study_incident(kind="late_series", establishment_id=study.site_id, case_id=study.case_id, study_id=study.pk,
                   summary=f"Images arrived after the study was complete ({label})",
                   details={"series_uid": series.series_uid})
    if study.case_id:
        study_late_images(case_id=study.case_id, study_uid=study.study_uid, series_uid=series.series_uid, label=label)


@dataclass(frozen=True)
class StoredInstance:
    sop_instance_uid: str
    study_uid: str
    path: str
    sha256: str


def instance_quarantine(*, meta: Any, calling_ae: str, site_id: int | None, rel_path: str, size: int,
                        sha256: str, original: StoredInstance, now: dt.datetime) -> None:
    reason = ("same SOP Instance UID, different study" if original.study_uid != meta.study_uid
              else "same SOP Instance UID, different content")
    with transaction.atomic():
        q = QuarantinedInstance.objects.create(
            sop_instance_uid=meta.sop_instance_uid, study_uid=meta.study_uid, calling_ae=calling_ae[:16],
            path=rel_path, size=size, sha256=sha256, reason=reason, received_at=now)
        study_id = Study.objects.filter(study_uid=original.study_uid).values_list("pk", flat=True).first()
        audit_record(action="create", obj=q, patient_data=True, establishment_id=site_id,
                     details={"event": "quarantine", "sop_instance_uid": meta.sop_instance_uid, "reason": reason})
        study_incident(kind="duplicate_conflict", establishment_id=site_id, study_id=study_id,
                       summary=f"Conflicting duplicate from {calling_ae} quarantined: {reason}",
                       details={"sop_instance_uid": meta.sop_instance_uid, "original_sha256": original.sha256,
                                "quarantined_sha256": sha256, "quarantine_path": rel_path})
