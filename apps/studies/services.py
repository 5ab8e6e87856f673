"""Writes on received studies. Called by the DICOM gateway (association threads) and by the reconciler.

Invariants:
- an Instance row is created only after its file is durably on disk (the gateway writes first);
- a SOP Instance UID has one row; a conflicting copy is recorded in QuarantinedInstance;
- a study is complete after PDS_DICOM_QUIET_SECONDS without a new image; completion is a
  compare-and-set on (status=receiving, last_received_at < cutoff), the gateway's per-image
  update is a compare-and-set on status=receiving, so an image either extends the quiet period
  or is seen as late, never both;
- the routing message is sent after commit; PostgreSQL is the truth (``routing_enqueued_at``
  stays empty while the broker is down and the reconciler sends it again).

Audit: receiving a study (its first image), completing it and refusing a sender are audited;
individual images are not (one chained audit append per image would serialise every
association on the audit lock; the Instance rows are themselves the per-image record).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import F
from django.utils import timezone

from apps.audit.services import audit_record
from apps.studies.models import Instance, QuarantinedInstance, Series, Study, StudyStatus

log = logging.getLogger(__name__)


# --- senders -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SenderDecision:
    accepted: bool
    reason: str = ""
    site_id: int | None = None
    node_id: int | None = None
    diagnostic: int = 0  # A-ASSOCIATE-RJ diagnostic when refused: 0x03 calling AE, 0x07 called AE


def sender_decide(*, calling_ae: str, called_ae: str, address: str, tls: bool, gateway_aet: str,
                  node: Any) -> SenderDecision:
    """Pure rule: may this peer open an association? ``node`` is the active DicomNode for the calling AE or None."""
    if called_ae != gateway_aet:
        return SenderDecision(False, f"called AE title {called_ae!r} is not {gateway_aet!r}", diagnostic=0x07)
    if node is None:
        return SenderDecision(False, f"unknown calling AE title {calling_ae!r}", diagnostic=0x03)
    if not node.allows(address):
        return SenderDecision(False, f"{calling_ae} not allowed from {address}", diagnostic=0x03,
                              site_id=node.establishment_id, node_id=node.pk)
    if node.tls_required and not tls:
        return SenderDecision(False, f"{calling_ae} must use TLS", diagnostic=0x03,
                              site_id=node.establishment_id, node_id=node.pk)
    return SenderDecision(True, site_id=node.establishment_id, node_id=node.pk)


def sender_check(*, calling_ae: str, called_ae: str, address: str, tls: bool) -> SenderDecision:
    from apps.regions.selectors import dicom_node_for

    node = dicom_node_for(calling_ae) if calling_ae else None
    return sender_decide(calling_ae=calling_ae, called_ae=called_ae, address=address, tls=tls,
                         gateway_aet=settings.PDS_DICOM_AET, node=node)


@transaction.atomic
def association_refused_record(*, calling_ae: str, called_ae: str, address: str, decision: SenderDecision) -> None:
    """A security event (audit action 'security') and a technical incident."""
    from apps.traceability.models import IncidentKind
    from apps.traceability.services import incident_record

    details = {"calling_ae": calling_ae, "called_ae": called_ae, "address": address, "reason": decision.reason}
    audit_record(action="security", object_type="dicom.association", object_repr=f"{calling_ae}@{address}",
                 details=details, establishment_id=decision.site_id)
    incident_record(kind=IncidentKind.ASSOCIATION_REFUSED, source="gateway", establishment_id=decision.site_id,
                    summary=f"DICOM association refused: {decision.reason}", details=details)


@transaction.atomic
def file_rejected_record(*, site_id: int | None, calling_ae: str, sop_instance_uid: str, status: int,
                         reason: str) -> None:
    from apps.traceability.models import IncidentKind
    from apps.traceability.services import incident_record

    incident_record(kind=IncidentKind.FILE_REJECTED, source="gateway", establishment_id=site_id,
                    summary=f"Image refused from {calling_ae} (0x{status:04X}): {reason}",
                    details={"calling_ae": calling_ae, "sop_instance_uid": sop_instance_uid,
                             "status": f"0x{status:04X}", "reason": reason})


@transaction.atomic
def storage_full_record(*, site_id: int | None, calling_ae: str, free_mb: int) -> None:
    from apps.traceability.models import IncidentKind, Severity
    from apps.traceability.services import incident_record

    incident_record(kind=IncidentKind.STORAGE_FULL, source="gateway", establishment_id=site_id,
                    severity=Severity.CRITICAL,
                    summary=f"DICOM storage below threshold ({free_mb} MB free): images refused with 0xA700",
                    details={"calling_ae": calling_ae, "free_mb": free_mb,
                             "min_free_mb": settings.PDS_DICOM_MIN_FREE_MB})


# --- studies, series, instances ------------------------------------------------------------------


def _study_datetime(meta: Any) -> dt.datetime | None:
    from apps.regions.calendar import PARIS

    if meta.study_date is None:
        return None
    return dt.datetime.combine(meta.study_date, meta.study_time or dt.time(0, 0), tzinfo=PARIS).astimezone(dt.UTC)


@dataclass(frozen=True)
class SeriesRef:
    study_id: int
    series_id: int


def study_series_ensure(*, site_id: int, calling_ae: str, meta: Any, now: dt.datetime) -> SeriesRef:
    """The study and series rows for an instance, created on their first image (race-safe)."""
    from apps.regions.selectors import modality_for_dicom_code

    study_id = Study.objects.filter(study_uid=meta.study_uid).values_list("pk", flat=True).first()
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
                    study_datetime=_study_datetime(meta), body_part=meta.body_part[:64],
                    description=meta.study_description[:200], station_name=meta.station_name[:64],
                    referring_physician=meta.referring_physician[:200], first_received_at=now,
                    last_received_at=now, ultrasound=ultrasound)
                audit_record(action="receive", obj=study, patient_data=True, establishment_id=site_id,
                             details={"calling_ae": calling_ae, "study_uid": meta.study_uid,
                                      "modality": meta.modality, "ultrasound": ultrasound})
                study_id = study.pk
        except IntegrityError:  # another association created it first
            study_id = Study.objects.filter(study_uid=meta.study_uid).values_list("pk", flat=True).get()
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
                    now: dt.datetime, durable: Callable[[], object] | None = None) -> bool:
    """Record an instance. Returns True if it arrived after the study was complete.

    ``durable`` is the caller's wait for the file to be durably on disk (the gateway writes it in another
    thread): nothing is committed before it returns, and if it raises nothing is recorded.

    Raises IntegrityError, recording nothing, if the SOP Instance UID is already recorded (the caller
    resolves the duplicate) or the series row is gone. On PostgreSQL, outside a transaction (the
    gateway), the usual case -- an image of a study still receiving -- is one statement sent at once in
    a pipelined transaction, executed while the file is flushed, and committed after ``durable``
    returns; a late image, every image inside a caller's transaction and every image on SQLite is one
    ordinary transaction, after ``durable``.
    """
    conn = connections[DEFAULT_DB_ALIAS]  # one lookup: each access through the proxy costs a thread-local get
    args = {"ref": ref, "meta": meta, "rel_path": rel_path, "size": size, "sha256": sha256, "now": now}
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
                            now: dt.datetime) -> bool:
    Instance.objects.create(series_id=ref.series_id, study_id=ref.study_id, sop_instance_uid=meta.sop_instance_uid,
                            sop_class_uid=meta.sop_class_uid, transfer_syntax_uid=meta.transfer_syntax_uid,
                            instance_number=meta.instance_number, path=rel_path, size=size, sha256=sha256,
                            received_at=now)
    if not Series.objects.filter(pk=ref.series_id).update(num_instances=F("num_instances") + 1):
        raise IntegrityError(f"series {ref.series_id} does not exist")
    # Compare-and-set against the completion of the quiet period (see the module docstring).
    extended = bool(Study.objects.filter(pk=ref.study_id, status=StudyStatus.RECEIVING).update(
        num_instances=F("num_instances") + 1, last_received_at=now))
    if not extended:
        Study.objects.filter(pk=ref.study_id).update(num_instances=F("num_instances") + 1, last_received_at=now)
        _late_images_flag(study_id=ref.study_id, series_id=ref.series_id)
    return not extended


_RECEIVING_INSERT = f"""
    WITH stu AS (
        UPDATE {Study._meta.db_table} SET num_instances = num_instances + 1, last_received_at = %s
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


def _instance_insert_receiving_pg(conn: Any, *, ref: SeriesRef, meta: Any, rel_path: str, size: int, sha256: str,
                                  now: dt.datetime, durable: Callable[[], object] | None) -> bool:
    """One statement (data-modifying CTEs): extend the study's quiet period if it is still receiving
    (compare-and-set, the row lock orders it against completion), and only then insert the instance and
    count it in its series. Returns False, having changed nothing, when the study is no longer
    receiving: the caller takes the late-image path. A duplicate UID raises IntegrityError; so does a
    series row that is gone (the deferred foreign key fails the commit, or the check below).

    With ``durable`` (outside any transaction): BEGIN and the statement are sent in pipeline mode and
    run while ``durable`` waits for the disk, then COMMIT (or ROLLBACK if it raised). The statement
    runs on server-side-binding cursors of the underlying psycopg connection, prepared once per
    connection (Django's client-side binding re-quoted the parameters of every image, 0.4 ms of CPU
    here); errors are still Django's."""
    params = [now, ref.study_id, StudyStatus.RECEIVING.value, ref.series_id, meta.sop_instance_uid,
              meta.sop_class_uid, meta.transfer_syntax_uid, meta.instance_number, rel_path, size, sha256, now]
    conn.ensure_connection()
    raw = conn.connection
    with conn.wrap_database_errors:
        if durable is None:
            with psycopg.Cursor(raw) as cur:
                cur.execute(_RECEIVING_INSERT, params, prepare=True)
                row = cur.fetchone()
        else:
            stmt = psycopg.Cursor(raw)
            try:
                with raw.pipeline():
                    psycopg.Cursor(raw).execute("BEGIN")
                    stmt.execute(_RECEIVING_INSERT, params, prepare=True)
                    try:
                        durable()
                    except BaseException:
                        psycopg.Cursor(raw).execute("ROLLBACK")
                        raise
                    psycopg.Cursor(raw).execute("COMMIT")
                row = stmt.fetchone()
            finally:
                stmt.close()
                if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    raw.execute("ROLLBACK")  # the statement failed: the pipeline skipped the COMMIT
    assert row is not None
    inserted, series_counted = row
    if inserted and not series_counted:  # only reachable inside a transaction (deferred FK not yet checked)
        raise IntegrityError(f"series {ref.series_id} does not exist")
    return bool(inserted)


def _late_images_flag(*, study_id: int, series_id: int) -> None:
    """First image of a series after completion: flag series, study and case, tell whoever holds the case.
    The study is not routed again."""
    from apps.traceability.models import IncidentKind
    from apps.traceability.services import incident_record
    from apps.worklist.models import Case, CaseEventKind
    from apps.worklist.services import case_event_add

    if not Series.objects.filter(pk=series_id, received_after_completion=False).update(received_after_completion=True):
        return
    Study.objects.filter(pk=study_id).update(late_series=True)
    study = Study.objects.get(pk=study_id)
    series = Series.objects.get(pk=series_id)
    audit_record(action="update", obj=study, patient_data=True, establishment_id=study.site_id,
                 details={"event": "late_series", "series_uid": series.series_uid, "series_number": series.number})
    label = f"series {series.number or ''} {series.description}".strip()
    incident_record(kind=IncidentKind.LATE_SERIES, source="gateway", establishment_id=study.site_id,
                    case_id=study.case_id, study_id=study.pk,
                    summary=f"Images arrived after the study was complete ({label})",
                    details={"series_uid": series.series_uid})
    if study.case_id:
        Case.objects.filter(pk=study.case_id).update(late_images=True)
        case = Case.objects.get(pk=study.case_id)
        case_event_add(case=case, kind=CaseEventKind.LATE_IMAGES,
                       message=f"Late images received after completion: {label}",
                       data={"study_uid": study.study_uid, "series_uid": series.series_uid})


@dataclass(frozen=True)
class StoredInstance:
    sop_instance_uid: str
    study_uid: str
    path: str
    sha256: str


def instance_quarantine(*, meta: Any, calling_ae: str, site_id: int | None, rel_path: str, size: int,
                        sha256: str, original: StoredInstance, now: dt.datetime) -> None:
    from apps.traceability.models import IncidentKind
    from apps.traceability.services import incident_record

    reason = ("same SOP Instance UID, different study" if original.study_uid != meta.study_uid
              else "same SOP Instance UID, different content")
    with transaction.atomic():
        q = QuarantinedInstance.objects.create(
            sop_instance_uid=meta.sop_instance_uid, study_uid=meta.study_uid, calling_ae=calling_ae[:16],
            path=rel_path, size=size, sha256=sha256, reason=reason, received_at=now)
        study_id = Study.objects.filter(study_uid=original.study_uid).values_list("pk", flat=True).first()
        audit_record(action="create", obj=q, patient_data=True, establishment_id=site_id,
                     details={"event": "quarantine", "sop_instance_uid": meta.sop_instance_uid, "reason": reason})
        incident_record(kind=IncidentKind.DUPLICATE_CONFLICT, source="gateway", establishment_id=site_id,
                        study_id=study_id,
                        summary=f"Conflicting duplicate from {calling_ae} quarantined: {reason}",
                        details={"sop_instance_uid": meta.sop_instance_uid, "original_sha256": original.sha256,
                                 "quarantined_sha256": sha256, "quarantine_path": rel_path})


# --- completion and hand-off to routing -----------------------------------------------------------


@dataclass(frozen=True)
class ReconcileResult:
    completed: tuple[int, ...] = ()
    routed: tuple[int, ...] = ()
    pending: tuple[int, ...] = ()


def study_complete(*, study_id: int, cutoff: dt.datetime, now: dt.datetime | None = None) -> bool:
    """Mark a quiet study complete and attach it to its case; ``studies_reconcile`` sends the routing
    message right after this commits."""
    from apps.traceability.models import IncidentKind
    from apps.traceability.services import incident_record
    from apps.worklist.services import case_attach_study

    now = now or timezone.now()
    with transaction.atomic():
        won = Study.objects.filter(pk=study_id, status=StudyStatus.RECEIVING, last_received_at__lt=cutoff).update(
            status=StudyStatus.COMPLETE, completed_at=now)
        if not won:
            return False
        study = Study.objects.get(pk=study_id)
        case = None if study.ultrasound else case_attach_study(study_id=study_id)
        if case is None:
            Study.objects.filter(pk=study_id).update(status=StudyStatus.NOT_ROUTED)
            if not study.ultrasound:
                incident_record(kind=IncidentKind.OTHER, source="gateway", establishment_id=study.site_id,
                                study_id=study_id,
                                summary=f"Study with modality {study.modality!r} stored but not routed")
        audit_record(action="update", obj=study, patient_data=True, establishment_id=study.site_id,
                     details={"event": "complete", "series": study.num_series, "instances": study.num_instances,
                              "case_id": case.pk if case else None, "ultrasound": study.ultrasound})
    return True


def study_routing_send(*, study_id: int) -> bool:
    """Send the routing message for a complete study once; on a broker failure leave it pending.

    The row is locked (skip_locked: a concurrent reconciler moves on) while the message is sent, and
    marked only once the broker took it: ``routing_enqueued_at`` never claims a message that was not sent.
    A commit failing after the send means a second message later (at least once; routing is idempotent).
    """
    from apps.worklist.services import ROUTE_TASK
    from pds_platform.celery import app

    with transaction.atomic():
        study = (Study.objects.select_for_update(skip_locked=True)
                 .filter(pk=study_id, status=StudyStatus.COMPLETE, routing_enqueued_at__isnull=True,
                         case__isnull=False).only("pk", "case_id").first())
        if study is None:
            return False
        try:
            app.send_task(ROUTE_TASK, args=[study.case_id], retry=False)
        except Exception:  # broker down: stays pending, the reconciler sends it when the broker is back
            log.warning("routing message for study %s not sent; will retry", study_id, exc_info=True)
            return False
        Study.objects.filter(pk=study_id).update(routing_enqueued_at=timezone.now(), status=StudyStatus.ROUTED)
    return True


def studies_reconcile(*, now: dt.datetime | None = None, quiet_seconds: float | None = None) -> ReconcileResult:
    """Complete the quiet studies, then send every routing message still pending. Safe to run anywhere, often."""
    now = now or timezone.now()
    quiet = settings.PDS_DICOM_QUIET_SECONDS if quiet_seconds is None else quiet_seconds
    cutoff = now - dt.timedelta(seconds=quiet)
    quiet_ids = list(Study.objects.filter(status=StudyStatus.RECEIVING, last_received_at__lt=cutoff)
                     .order_by("last_received_at").values_list("pk", flat=True)[:200])
    completed = tuple(i for i in quiet_ids if study_complete(study_id=i, cutoff=cutoff, now=now))
    # After those commits: the routing message of every complete study not yet handed over.
    pending_ids = list(Study.objects.filter(status=StudyStatus.COMPLETE, routing_enqueued_at__isnull=True,
                                            case__isnull=False).values_list("pk", flat=True)[:200])
    routed: list[int] = []
    for i in pending_ids:
        if not study_routing_send(study_id=i):
            break  # the broker is down (a failed send can take seconds): try again next pass
        routed.append(i)
    pending = [i for i in pending_ids if i not in routed]
    return ReconcileResult(completed=completed, routed=tuple(routed), pending=tuple(pending))
