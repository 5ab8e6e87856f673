"""The association handlers (class Gateway): sender check, echo, store (spool, record), study holds."""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import DatabaseError, DataError, IntegrityError, connection
from django.utils import timezone

from apps.core.context import ActorContext, set_actor
from apps.studies.services import ASSOCIATION_LEASE_SECONDS, StudyOfAnotherSite, study_series_discard_empty
from dicom_gateway import storage
from dicom_gateway.checks import STATUS_VALUE_OUT_OF_RANGE, Refusal, image_check
from dicom_gateway.config import GatewayConfig
from dicom_gateway.metadata import (
    STATUS_NOT_AUTHORIZED,
    STATUS_OUT_OF_RESOURCES,
    STATUS_SUCCESS,
    InstanceMeta,
    InstanceRejected,
    instance_meta_parse,
)
from dicom_gateway.reject import reject as _reject

log = logging.getLogger("dicom_gateway")

STORAGE_FULL_INCIDENT_EVERY = 60.0
ORPHAN_GRACE_SECONDS = 30.0
HOLD_RENEW_SECONDS = 2.0  # shorter than the quiet period, which restarts at a database's recovery
HOLD_IDLE_SECONDS = 60.0  # an open association that sent nothing of a study for this long no longer holds it


@dataclass(frozen=True)
class Sender:
    calling_ae: str
    address: str
    site_id: int  # an accepted sender is always a DICOM node of an establishment



class Pending(Protocol):
    """A durable write under way: a Future of the helper thread's write, or a spooled image's ``SpoolLink``."""

    def result(self) -> None: ...

    def cancel(self) -> bool: ...


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.root = config.storage_root
        self._series: dict[str, Any] = {}
        self._last_full_incident = 0.0
        self._lock = threading.Lock()
        self._lease_lock = threading.Lock()
        self._held: dict[Any, dict[int, float]] = {}  # open association -> study id -> last image (monotonic)
        self._pool = ThreadPoolExecutor(max_workers=config.max_associations + 2, thread_name_prefix="disk")

    # Association requested: known senders only.
    def on_requested(self, event: Any) -> None:
        from apps.studies.services import association_refused_record, sender_check

        assoc = event.assoc
        rq = assoc.requestor.primitive
        calling = str(rq.calling_ae_title or "").strip()
        called = str(rq.called_ae_title or "").strip()
        address = str(assoc.requestor.address)
        sock = getattr(assoc.dul.socket, "socket", None)
        tls = isinstance(sock, ssl.SSLSocket)
        set_actor(ActorContext(channel="gateway", ip=address, username=f"dicom:{calling}"[:150]))
        try:
            decision = sender_check(calling_ae=calling, called_ae=called, address=address, tls=tls)
        except DatabaseError:
            log.exception("sender check failed (database); rejecting transiently")
            db_reset()
            _reject(assoc, 0x02, 0x01, 0x01)
            return
        if decision.accepted:
            assert decision.site_id is not None
            assoc.pds_sender = Sender(calling_ae=calling, address=address, site_id=decision.site_id)
            return
        log.warning("association refused: %s", decision.reason)
        _reject(assoc, 0x01, 0x01, decision.diagnostic or 0x01)
        try:
            association_refused_record(calling_ae=calling, called_ae=called, address=address, decision=decision)
        except DatabaseError:
            log.exception("could not record the refused association")
            db_reset()

    def on_echo(self, event: Any) -> int:
        return STATUS_SUCCESS

    def on_closed(self, event: Any) -> None:
        self.holds_release(event.assoc)
        try:
            connection.close()
        except Exception:  # best effort: the thread is ending
            pass

    def on_store(self, event: Any) -> Any:
        sender: Sender = event.assoc.pds_sender
        set_actor(ActorContext(channel="gateway", ip=sender.address, username=f"dicom:{sender.calling_ae}"[:150]))
        req = event.request
        status = self.store(sender, sop_class=str(req.AffectedSOPClassUID or ""),
                            sop_uid=str(req.AffectedSOPInstanceUID or ""), ts=str(event.context.transfer_syntax),
                            data_set=req.DataSet, assoc=event.assoc)
        return status.response() if isinstance(status, Refusal) else status  # the sender's log says why

    def store(self, sender: Sender, *, sop_class: str, sop_uid: str, ts: str, data_set: Any,
              assoc: Any = None) -> int:
        """Store one image (the dataset's bytes, after the Part 10 header this builds) sent by ``sender``:
        C-STORE (``assoc``: the association, which holds its studies) and STOW-RS (no association). Returns
        the status to answer; a ``Refusal`` (a permanent failure) carries its reason."""
        spool = data_set if isinstance(data_set, storage.SpooledDataSet) else None
        try:
            header = storage.part10_header(sop_class_uid=sop_class, sop_instance_uid=sop_uid, transfer_syntax_uid=ts)
        except Exception as exc:
            if spool is not None:
                spool.discard()
            return self._refuse(sender, sop_uid, 0xC210, f"cannot understand: {exc}")
        if spool is not None and not (spool.usable() and spool.header == header):
            spool.discard()
            spool = None
        file_bytes = spool.file_bytes() if spool is not None else header + data_set.getvalue()
        # A spooled image is already on the disk (its unnamed file): the free space has counted it, and
        # subtracting it again refused images with room to spare.
        needed = 0 if spool is not None else len(file_bytes)
        if not storage.has_room(self.root, needed=needed, min_free_mb=self.config.min_free_mb):
            if spool is not None:
                spool.discard()
            if self._stored_identical(sop_uid, file_bytes):  # a resend needs no room: nothing is written
                return STATUS_SUCCESS
            self._storage_full(sender)
            return STATUS_OUT_OF_RESOURCES
        # Usually the bytes are already in an unnamed file, written as they arrived and being written back since
        # the last fragment (storage.SpooledDataSet): once the statement and its COMMIT are sent, this thread
        # flushes and names it (``SpoolLink``) while PostgreSQL commits. Otherwise (spooling unavailable) a helper
        # thread writes and flushes a temporary file while this one parses, hashes and looks up the series;
        # hashing first then: it releases the GIL, so both threads run at once while the writer needs it most
        # (between its syscalls); the parse holds it.
        name: Future[str] = Future()
        sha: str | None = None
        written: Pending
        if spool is None:
            written = self._pool.submit(self._write, file_bytes, _safe_tag(sop_uid), name)
            sha = storage.sha256_of(file_bytes)
        else:
            sha = spool.sha256()  # hashed as the fragments arrived
        try:
            # What the gateway acknowledges must be an image its SOP class allows, framed as its transfer syntax
            # says, with values the database holds (dicom_gateway.checks; one walk of the bytes, no decode).
            image_check(file_bytes, transfer_syntax_uid=ts, sop_class_uid=sop_class, sop_instance_uid=sop_uid)
            meta = instance_meta_parse(file_bytes, transfer_syntax_uid=ts, sop_class_uid=sop_class,
                                       sop_instance_uid=sop_uid, describe=self._series_unknown)
        except Exception as exc:
            if spool is not None:
                spool.discard()
            else:
                name.set_exception(exc)  # the writer removes its temporary file
                _settled(written)
            if isinstance(exc, InstanceRejected):
                return self._refuse(sender, sop_uid, exc.status, exc.reason)
            # anything pydicom trips on is a file we cannot understand
            return self._refuse(sender, sop_uid, 0xC210, f"cannot understand: {exc}")
        self._hold_touch(assoc, meta.series_uid)
        rel = meta.relative_path()
        if spool is not None:
            written = spool.publish(rel)
        else:
            name.set_result(rel)
        if sha is None:
            sha = storage.sha256_of(file_bytes)
        now = timezone.now()
        try:
            status = self._record(sender, meta, rel, file_bytes, sha, now, written)
            self._hold_touch(assoc, meta.series_uid)  # the first image of a study: its id is known now
            dimse = getattr(assoc, "dimse", None)
            if spool is not None and dimse is not None:  # the sender's next image is spooled near this one
                dimse.spool_near = f"{os.fspath(self.root)}/{meta.study_uid}/{meta.series_uid}"
            return status
        except FileExistsError:
            return self._existing_file(sender, meta, rel, file_bytes, sha, now)
        except StudyOfAnotherSite as exc:  # a site adds images to its own studies only (STOW-RS refuses them too)
            if _settled(written):
                self._unlink_unacknowledged(rel)
            return self._refuse(sender, sop_uid, STATUS_NOT_AUTHORIZED, str(exc))
        except OSError:
            log.exception("disk write failed for %s", meta.sop_instance_uid)
            return STATUS_OUT_OF_RESOURCES
        except DataError as exc:  # a value the database refuses: permanent, retrying would never end
            if _settled(written):
                self._unlink_unacknowledged(rel)
            with self._lock:
                ref = self._series.pop(meta.series_uid, None)
            if ref is not None:  # the rows its refusal would leave empty (else the reconciler removes them)
                study_series_discard_empty(study_id=ref.study_id, series_id=ref.series_id, quiet=True)
            return self._refuse(sender, sop_uid, STATUS_VALUE_OUT_OF_RANGE,
                                f"a value the database cannot store: {str(exc).splitlines()[0] if str(exc) else exc}")
        except Exception:
            log.exception("could not record %s; the sender will retry", meta.sop_instance_uid)
            if _settled(written):
                self._unlink_unacknowledged(rel)
            db_reset()
            return STATUS_OUT_OF_RESOURCES

    def _write(self, file_bytes: bytes, tag: str, name: Future[str]) -> None:
        """Durable write under the final name once known: temporary file fsynced, then linked (never
        replacing an existing file: FileExistsError) and the directory fsynced."""
        tmp = storage.temp_write(self.root, (file_bytes,), tag=tag)
        try:
            rel = name.result()
        except BaseException:
            storage.discard(tmp)
            raise
        storage.publish(self.root, tmp, rel)

    # --- helpers ---

    def _record(self, sender: Sender, meta: InstanceMeta, rel: str, file_bytes: bytes, sha: str, now: Any,
                written: Pending) -> int:
        """Record the row once the file is durably under ``rel`` (FileExistsError: the name exists, see
        _existing_file). Resolves a duplicate that won the race."""
        from apps.studies.selectors import stored_instance_for
        from apps.studies.services import instance_record

        ref = self._series_ref(sender, meta, file_bytes, now)  # overlaps the disk flush
        for attempt in (1, 2):
            try:
                # The row is committed only once the file is durable (``durable`` raises FileExistsError
                # or OSError from the writer, and then nothing is recorded).
                instance_record(ref=ref, meta=meta, rel_path=rel, size=len(file_bytes), sha256=sha, now=now,
                                durable=written.result,
                                lease_until=now + dt.timedelta(seconds=ASSOCIATION_LEASE_SECONDS))
                return STATUS_SUCCESS
            except IntegrityError:
                stored = stored_instance_for(meta.sop_instance_uid)
                if stored is None:  # stale cached series/study (e.g. deleted): look them up again
                    self._series.pop(meta.series_uid, None)
                    if attempt == 2:
                        raise
                    ref = self._series_ref(sender, meta, file_bytes, now)
                    continue
                if stored.path != rel:  # recorded under another study: ours was never acknowledged
                    self._unlink_unacknowledged(rel)
                return self._duplicate(sender, meta, stored, file_bytes, sha, now)
        raise AssertionError("unreachable")

    def _existing_file(self, sender: Sender, meta: InstanceMeta, rel: str, file_bytes: bytes, sha: str,
                       now: Any) -> int:
        from apps.studies.selectors import stored_instance_for

        try:
            stored = stored_instance_for(meta.sop_instance_uid)
            if stored is not None:
                return self._duplicate(sender, meta, stored, file_bytes, sha, now)
            # A file no row acknowledges: left by a crash between rename and record (never acknowledged),
            # or another association is between those two steps right now.
            path = self.root / rel
            if storage.file_sha256(path) != sha:
                if time.time() - path.stat().st_mtime < ORPHAN_GRACE_SECONDS:
                    return STATUS_OUT_OF_RESOURCES  # transient: the sender retries
                storage.replace_unacknowledged(self.root, rel, (file_bytes,), tag=meta.sop_instance_uid, sha256=sha)
            return self._record_existing(sender, meta, rel, file_bytes, sha, now)
        except OSError:
            log.exception("disk failure on %s", rel)
            return STATUS_OUT_OF_RESOURCES
        except Exception:
            log.exception("could not resolve existing file %s", rel)
            db_reset()
            return STATUS_OUT_OF_RESOURCES

    def _record_existing(self, sender: Sender, meta: InstanceMeta, rel: str, file_bytes: bytes, sha: str,
                         now: Any) -> int:
        from apps.studies.selectors import stored_instance_for
        from apps.studies.services import instance_record

        ref = self._series_ref(sender, meta, file_bytes, now)
        try:
            instance_record(ref=ref, meta=meta, rel_path=rel, size=len(file_bytes), sha256=sha, now=now)
        except IntegrityError:
            stored = stored_instance_for(meta.sop_instance_uid)
            if stored is None:
                raise
            return self._duplicate(sender, meta, stored, file_bytes, sha, now)
        return STATUS_SUCCESS

    def _duplicate(self, sender: Sender, meta: InstanceMeta, stored: Any, file_bytes: bytes, sha: str,
                   now: Any) -> int:
        """Same UID: identical content is acknowledged and ignored; anything else is quarantined, the
        original untouched."""
        from apps.studies.services import instance_quarantine

        if stored.sha256 == sha and stored.study_uid == meta.study_uid:
            return STATUS_SUCCESS
        qrel = f"{storage.QUARANTINE}/{meta.sop_instance_uid}.{sha[:16]}.dcm"
        try:
            storage.durable_write(self.root, qrel, (file_bytes,), tag=f"q.{meta.sop_instance_uid}", sha256=sha)
        except FileExistsError:
            return STATUS_SUCCESS  # this very copy is already quarantined
        try:
            instance_quarantine(meta=meta, calling_ae=sender.calling_ae, site_id=sender.site_id, rel_path=qrel,
                                size=len(file_bytes), sha256=sha, original=stored, now=now)
        except Exception:
            self._unlink_unacknowledged(qrel)
            raise
        log.warning("conflicting duplicate %s quarantined", meta.sop_instance_uid)
        return STATUS_SUCCESS

    def _stored_identical(self, sop_uid: str, file_bytes: bytes) -> bool:
        """Is this very image (same UID, same bytes: the header is deterministic) already stored? Asked only
        when the disk is below the threshold."""
        from apps.studies.selectors import stored_instance_for

        try:
            stored = stored_instance_for(sop_uid)
        except Exception:
            log.exception("could not look up %s", sop_uid)
            db_reset()
            return False
        return stored is not None and stored.sha256 == storage.sha256_of(file_bytes)

    # --- open associations hold their studies (Study.lease_until) ---
    # Each image's own update writes the lease; this process renews it (HOLD_RENEW_SECONDS) for the studies its
    # open associations have been sending in the last HOLD_IDLE_SECONDS (failed attempts count: during a
    # database outage the sender is still there), and clears it when the association ends.

    def _hold_touch(self, assoc: Any, series_uid: str) -> None:
        if assoc is None:  # STOW-RS: no association holds the study; each image's own lease runs out by itself
            return
        ref = self._series.get(series_uid)
        if ref is not None:
            with self._lock:
                self._held.setdefault(assoc, {})[ref.study_id] = time.monotonic()

    def holds_release(self, assoc: Any) -> None:
        from apps.studies.services import studies_lease_release

        with self._lease_lock:  # not interleaved with a renewal that would put it back
            with self._lock:
                studies = set(self._held.pop(assoc, {}))
                studies -= {s for held in self._held.values() for s in held}  # another association still sends
            if not studies:
                return
            try:
                studies_lease_release(study_ids=sorted(studies))
            except Exception:  # runs out by itself
                log.warning("could not release the hold on studies %s", sorted(studies), exc_info=True)
                db_reset()

    def holds_renew(self) -> None:
        """One renewal pass (the lease thread of each process)."""
        from apps.studies.services import studies_lease_renew

        now_mono = time.monotonic()
        with self._lock:
            ended = [a for a in self._held if not _alive(a)]  # ended without a release or abort event
        for assoc in ended:
            self.holds_release(assoc)
        with self._lease_lock:
            with self._lock:
                studies = sorted({s for held in self._held.values() for s, at in held.items()
                                  if now_mono - at < HOLD_IDLE_SECONDS})
            if studies:
                studies_lease_renew(study_ids=studies,
                                    until=timezone.now() + dt.timedelta(seconds=ASSOCIATION_LEASE_SECONDS))

    def holds_keep(self, stop: threading.Event) -> None:
        while not stop.wait(HOLD_RENEW_SECONDS):
            try:
                self.holds_renew()
            except Exception:  # database down: the next pass renews
                log.warning("could not renew the open associations' studies", exc_info=True)
                db_reset()

    def _series_unknown(self, series_uid: str) -> bool:
        return series_uid not in self._series

    def _series_ref(self, sender: Sender, meta: InstanceMeta, file_bytes: bytes, now: Any) -> Any:
        from apps.studies.services import study_series_ensure

        ref = self._series.get(meta.series_uid)
        if ref is None:
            if not meta.described:  # the series left the cache since the image was parsed
                meta = instance_meta_parse(file_bytes, transfer_syntax_uid=meta.transfer_syntax_uid)
            ref = study_series_ensure(site_id=sender.site_id, calling_ae=sender.calling_ae, meta=meta, now=now)
            with self._lock:
                if len(self._series) > 10_000:
                    self._series.clear()
                self._series[meta.series_uid] = ref
        return ref

    def _unlink_unacknowledged(self, rel: str) -> None:
        try:
            (self.root / rel).unlink(missing_ok=True)
        except OSError:
            log.exception("could not remove unacknowledged %s", rel)

    def _refuse(self, sender: Sender, sop_uid: str, status: int, reason: str) -> Refusal:
        from apps.studies.services import file_rejected_record

        log.warning("image %s from %s refused (0x%04X): %s", sop_uid, sender.calling_ae, status, reason)
        try:
            file_rejected_record(site_id=sender.site_id, calling_ae=sender.calling_ae, sop_instance_uid=sop_uid[:64],
                                 status=status, reason=reason[:250])
        except Exception:
            log.exception("could not record the refused image")
            db_reset()
        return Refusal(status, reason)

    def _storage_full(self, sender: Sender) -> None:
        from apps.studies.services import storage_full_record

        with self._lock:
            if time.monotonic() - self._last_full_incident < STORAGE_FULL_INCIDENT_EVERY and self._last_full_incident:
                return
            self._last_full_incident = time.monotonic()
        log.error("storage below threshold: refusing images with 0xA700")
        try:
            storage_full_record(site_id=sender.site_id, calling_ae=sender.calling_ae,
                                free_mb=storage.free_bytes(self.root) // (1024 * 1024))
        except Exception:
            log.exception("could not record the storage incident")
            db_reset()


def _alive(assoc: Any) -> bool:
    is_alive = getattr(assoc, "is_alive", None)
    return bool(is_alive()) if is_alive is not None else True


def _safe_tag(uid: str) -> str:
    return "".join(c for c in uid[:64] if c.isdigit() or c == ".") or "x"


def _settled(written: Pending) -> bool:
    """Wait for a write to finish (or cancel it if not started); True if it created the final file."""
    if written.cancel():
        return False
    try:
        written.result()
        return True
    except Exception:
        return False


def db_reset() -> None:
    try:
        connection.close()
    except Exception:
        pass


_service: Gateway | None = None
_service_lock = threading.Lock()


def ingest_service() -> Gateway:
    """The ingest service of a process that is not the gateway (the web's STOW-RS, the worker's C-GET of priors):
    a ``Gateway`` on the settings' storage root, no listening association; one per process and storage root."""
    global _service
    with _service_lock:
        config = GatewayConfig.from_settings()
        if _service is None or _service.root != config.storage_root:
            (config.storage_root / ".incoming").mkdir(parents=True, exist_ok=True)
            _service = Gateway(config)
        return _service
