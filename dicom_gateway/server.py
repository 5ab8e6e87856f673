"""The DICOM gateway: C-ECHO and C-STORE SCP for the requesting sites.

Process model: a parent binds the listening socket(s), starts ``PDS_DICOM_WORKERS`` child
processes that inherit them (pynetdicom is CPU-bound: one process per core), restarts a child
that dies, beats the "gateway" heartbeat and runs the study reconciler every second (so that
a study completes and is handed to routing even while the broker is down). Each child runs
pynetdicom on the shared socket; an idle child wins the race for ``accept()`` because a busy
one waits a moment before accepting.

Per image: while it arrives, its bytes go to an unnamed file (reactor.GatewayDIMSE,
storage.SpooledDataSet), whose flush starts once the last fragment is written. Then
``Gateway.on_store``: parse the header from the received bytes (no decode/re-encode; after the
first image of a series, a walk over the element headers, with pydicom judging anything not
plain), check free space, give the file its final name once flushed (link, fsync dir; without
spooling: temp, fsync, link, fsync dir, in a helper thread overlapping the parse), record the
Instance row (on PostgreSQL one statement sent during the flush, committed once the file is
durable), and only then answer 0x0000. Any failure answers a failure status and leaves no file
that a row does not acknowledge.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, connections
from django.utils import timezone
from pydicom import config as pydicom_config
from pynetdicom import AE, _config, evt
from pynetdicom.transport import ThreadedAssociationServer

from apps.core.context import ActorContext, set_actor
from dicom_gateway import storage
from dicom_gateway.metadata import (
    STATUS_OUT_OF_RESOURCES,
    STATUS_SUCCESS,
    InstanceMeta,
    InstanceRejected,
    instance_meta_parse,
)
from dicom_gateway.reactor import GatewayRequestHandler

log = logging.getLogger("dicom_gateway")

VERIFICATION = "1.2.840.10008.1.1"
STORAGE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2": "CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.4": "MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.1": "Computed Radiography Image Storage",
    "1.2.840.10008.5.1.4.1.1.1.1": "Digital X-Ray Image Storage - For Presentation",
    "1.2.840.10008.5.1.4.1.1.1.1.1": "Digital X-Ray Image Storage - For Processing",
    # Ultrasound is not read remotely, but a modality may send it anyway: stored and flagged, never routed.
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image Storage",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame Image Storage",
}
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old modalities)
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    # Compressed: accepted and stored as received.
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203", "1.2.840.10008.1.2.5",
]
RECONCILE_SECONDS = 1.0
STORAGE_FULL_INCIDENT_EVERY = 60.0
ORPHAN_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class GatewayConfig:
    aet: str
    host: str
    port: int
    tls_port: int
    tls_cert: str
    tls_key: str
    tls_ca: str
    storage_root: Path
    min_free_mb: int
    max_associations: int
    max_pdu: int
    workers: int

    @classmethod
    def from_settings(cls) -> GatewayConfig:
        return cls(aet=settings.PDS_DICOM_AET, host=settings.PDS_DICOM_HOST, port=settings.PDS_DICOM_PORT,
                   tls_port=settings.PDS_DICOM_TLS_PORT, tls_cert=settings.PDS_DICOM_TLS_CERT,
                   tls_key=settings.PDS_DICOM_TLS_KEY, tls_ca=settings.PDS_DICOM_TLS_CA,
                   storage_root=Path(settings.PDS_DICOM_STORAGE_ROOT), min_free_mb=settings.PDS_DICOM_MIN_FREE_MB,
                   max_associations=settings.PDS_DICOM_MAX_ASSOCIATIONS, max_pdu=settings.PDS_DICOM_MAX_PDU,
                   workers=max(1, settings.PDS_DICOM_WORKERS))

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_port and self.tls_cert and self.tls_key)


@dataclass(frozen=True)
class Sender:
    calling_ae: str
    address: str
    site_id: int  # an accepted sender is always a DICOM node of an establishment


def tls_context(config: GatewayConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.tls_cert, config.tls_key)
    if config.tls_ca:  # client certificates required when a CA is configured
        ctx.load_verify_locations(config.tls_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


# --- the handlers (run in pynetdicom's association threads) ---------------------------------------


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.root = config.storage_root
        self._series: dict[str, Any] = {}
        self._last_full_incident = 0.0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=config.max_associations + 2, thread_name_prefix="disk")
        # Flushing spooled images (reactor.GatewayDIMSE): at most one per association at a time.
        self.flushers = ThreadPoolExecutor(max_workers=config.max_associations + 2, thread_name_prefix="flush")

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
            _db_reset()
            assoc.acse.send_reject(0x02, 0x01, 0x01)
            return
        if decision.accepted:
            assert decision.site_id is not None
            assoc.pds_sender = Sender(calling_ae=calling, address=address, site_id=decision.site_id)
            return
        log.warning("association refused: %s", decision.reason)
        assoc.acse.send_reject(0x01, 0x01, decision.diagnostic or 0x01)
        try:
            association_refused_record(calling_ae=calling, called_ae=called, address=address, decision=decision)
        except DatabaseError:
            log.exception("could not record the refused association")
            _db_reset()

    def on_echo(self, event: Any) -> int:
        return STATUS_SUCCESS

    def on_closed(self, event: Any) -> None:
        try:
            connection.close()
        except Exception:  # best effort: the thread is ending
            pass

    def on_store(self, event: Any) -> int:
        sender: Sender = event.assoc.pds_sender
        set_actor(ActorContext(channel="gateway", ip=sender.address, username=f"dicom:{sender.calling_ae}"[:150]))
        req = event.request
        ts = str(event.context.transfer_syntax)
        sop_class = str(req.AffectedSOPClassUID or "")
        sop_uid = str(req.AffectedSOPInstanceUID or "")
        data_set = req.DataSet
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
        file_bytes = header + data_set.getvalue()
        if not storage.has_room(self.root, needed=len(file_bytes), min_free_mb=self.config.min_free_mb):
            if spool is not None:
                spool.discard()
            self._storage_full(sender)
            return STATUS_OUT_OF_RESOURCES
        # The durable write (the slowest step) runs in another thread while this one parses, hashes and looks
        # up the series. Usually the bytes are already in an unnamed file, written as they arrived and being
        # flushed since the last fragment (storage.SpooledDataSet): the flushing thread names the file once it
        # is flushed and this thread has parsed the name. Otherwise (spooling unavailable) a helper thread
        # writes and flushes a temporary file meanwhile; hashing first then: it releases the GIL, so both
        # threads run at once while the writer needs it most (between its syscalls); the parse holds it.
        name: Future[str] = Future()
        sha: str | None = None
        if spool is None:
            written = self._pool.submit(self._write, file_bytes, _safe_tag(sop_uid), name)
            sha = storage.sha256_of(file_bytes)
        try:
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
        rel = meta.relative_path()
        if spool is not None:
            written = spool.publish(rel)
        else:
            name.set_result(rel)
        if sha is None:
            sha = storage.sha256_of(file_bytes)
        now = timezone.now()
        try:
            return self._record(sender, meta, rel, file_bytes, sha, now, written)
        except FileExistsError:
            return self._existing_file(sender, meta, rel, file_bytes, sha, now)
        except OSError:
            log.exception("disk write failed for %s", meta.sop_instance_uid)
            return STATUS_OUT_OF_RESOURCES
        except Exception:
            log.exception("could not record %s; the sender will retry", meta.sop_instance_uid)
            if _settled(written):
                self._unlink_unacknowledged(rel)
            _db_reset()
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
                written: Future[None]) -> int:
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
                                durable=written.result)
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
            _db_reset()
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

    def _refuse(self, sender: Sender, sop_uid: str, status: int, reason: str) -> int:
        from apps.studies.services import file_rejected_record

        log.warning("image %s from %s refused (0x%04X): %s", sop_uid, sender.calling_ae, status, reason)
        try:
            file_rejected_record(site_id=sender.site_id, calling_ae=sender.calling_ae, sop_instance_uid=sop_uid[:64],
                                 status=status, reason=reason[:250])
        except Exception:
            log.exception("could not record the refused image")
            _db_reset()
        return status

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
            _db_reset()


def _safe_tag(uid: str) -> str:
    return "".join(c for c in uid[:64] if c.isdigit() or c == ".") or "x"


def _settled(written: Future[None]) -> bool:
    """Wait for a write to finish; True if it created the final file."""
    try:
        written.result()
        return True
    except Exception:
        return False


def _db_reset() -> None:
    try:
        connection.close()
    except Exception:
        pass


# --- one child process -------------------------------------------------------------------------


class SharedSocketServer(ThreadedAssociationServer):
    """pynetdicom's threaded server on a listening socket inherited from the parent."""

    spool: tuple[Path, ThreadPoolExecutor] | None = None  # root and flushing threads (reactor.GatewayDIMSE)

    def __init__(self, ae: AE, listen_sock: socket.socket, ae_title: str, contexts: list[Any],
                 ssl_context: ssl.SSLContext | None, evt_handlers: list[Any]) -> None:
        self._shared = listen_sock
        super().__init__(ae, listen_sock.getsockname()[:2], ae_title, contexts, ssl_context=ssl_context,
                         evt_handlers=evt_handlers, request_handler=GatewayRequestHandler)

    def server_bind(self) -> None:
        if self.socket is not None:
            self.socket.close()
        self.socket = self._shared
        self.server_address = self.socket.getsockname()[:2]

    def server_activate(self) -> None:
        pass  # the parent listens

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        # Every child wakes on a new connection; the least busy should win it. A busy child gives
        # the others a head start, then tries (BlockingIOError if someone else took it).
        busy = len(self.active_associations)
        if busy:
            time.sleep(min(0.003 * busy, 0.03))
        return super().get_request()


def build_ae(config: GatewayConfig) -> AE:
    _config.LOG_HANDLER_LEVEL = "none"  # the per-PDU debug handlers cost throughput
    ae = AE(ae_title=config.aet)
    ae.maximum_pdu_size = config.max_pdu
    ae.maximum_associations = config.max_associations
    ae.require_called_aet = False  # checked (and recorded) in on_requested
    ae.acse_timeout = 30
    ae.dimse_timeout = 60
    ae.network_timeout = 120
    ae.add_supported_context(VERIFICATION)
    for sop in STORAGE_SOP_CLASSES:
        ae.add_supported_context(sop, TRANSFER_SYNTAXES)
    return ae


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _gc_settle() -> None:
    """Move what start-up created (Django, the models, pydicom's dictionaries: over 100,000 objects) out of the
    garbage collector's reach: otherwise every full collection, pynetdicom's periodic one included, walks
    them all with the GIL held (0.12-0.15 s here just after start-up; up to 0.6 s per 10 s of ingest seen
    with py-spy), during which no image of this process moves."""
    import apps.studies.selectors  # noqa: F401  (imported by the handlers, and so loaded before the freeze)
    import apps.studies.services  # noqa: F401

    gc.collect()
    gc.freeze()


def child_main(config: GatewayConfig, listen_fds: list[tuple[int, bool]], parent_pid: int) -> None:
    _die_with_parent()
    # pydicom's value validation (a regex per UID, per element read or set) is off in this process: the
    # gateway checks what it relies on itself (metadata.UID_RE) and stores the bytes as received.
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE
    if os.getppid() != parent_pid:
        sys.exit(1)
    gateway = Gateway(config)
    ae = build_ae(config)
    _gc_settle()
    handlers = [(evt.EVT_REQUESTED, gateway.on_requested), (evt.EVT_C_ECHO, gateway.on_echo),
                (evt.EVT_C_STORE, gateway.on_store), (evt.EVT_RELEASED, gateway.on_closed),
                (evt.EVT_ABORTED, gateway.on_closed)]
    servers: list[SharedSocketServer] = []
    for fd, is_tls in listen_fds:
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        srv = SharedSocketServer(ae, sock, config.aet, ae.supported_contexts,
                                 tls_context(config) if is_tls else None, handlers)
        srv.spool = (config.storage_root, gateway.flushers)
        ae._servers.append(srv)
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True,
                         name=f"AcceptorServer-{fd}").start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for srv in servers:
        srv.shutdown()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(s.active_associations for s in servers):
        time.sleep(0.1)
    os._exit(0)


# --- the parent ----------------------------------------------------------------------------------


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=128, reuse_port=False)
    sock.set_inheritable(True)
    return sock


def _reconcile_loop(stop: threading.Event) -> None:
    from django.db import close_old_connections

    from apps.core.context import acting_as
    from apps.studies.services import studies_reconcile

    while not stop.wait(RECONCILE_SECONDS):
        try:
            close_old_connections()
            with acting_as(channel="gateway"):
                result = studies_reconcile()
            if result.completed or result.routed:
                log.info("studies complete: %s; routing sent: %s; pending: %s", list(result.completed),
                         list(result.routed), list(result.pending))
        except Exception:  # database down: try again next second
            log.warning("study reconciler failed", exc_info=True)
            _db_reset()


def serve(config: GatewayConfig, *, reconcile: bool = True, out: Any = sys.stdout) -> None:
    from apps.core.heartbeat import start_heartbeat_thread

    config.storage_root.mkdir(parents=True, exist_ok=True)
    swept = storage.incoming_sweep(config.storage_root)
    sockets = [(_listen(config.host, config.port), False)]
    if config.tls_enabled:
        tls_context(config)  # fail now on a bad certificate, not at the first association
        sockets.append((_listen(config.host, config.tls_port), True))
    connections.close_all()
    fds = [(s.fileno(), tls) for s, tls in sockets]
    fd_arg = ",".join(f"{fd}:{int(tls)}" for fd, tls in fds)
    stopping = threading.Event()

    def spawn(index: int) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "run_gateway", "--child", fd_arg,
               "--parent-pid", str(os.getpid())]
        return subprocess.Popen(cmd, pass_fds=[fd for fd, _ in fds], cwd=settings.BASE_DIR)

    children = {i: spawn(i) for i in range(config.workers)}
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    hb_stop = start_heartbeat_thread("gateway", {"aet": config.aet, "port": config.port,
                                                 "tls_port": config.tls_port if config.tls_enabled else None,
                                                 "workers": config.workers})
    if reconcile:
        threading.Thread(target=_reconcile_loop, args=(stopping,), daemon=True, name="reconciler").start()
    tls_text = f", TLS port {config.tls_port}" if config.tls_enabled else ""
    out.write(f"DICOM gateway {config.aet} listening on {config.host}:{config.port}{tls_text} "
              f"({config.workers} processes, max PDU {config.max_pdu}, storage {config.storage_root}"
              f"{f', swept {swept} temporary files' if swept else ''})\n")
    out.flush()
    while not stopping.wait(0.5):
        for i, proc in list(children.items()):
            if proc.poll() is not None and not stopping.is_set():
                log.error("gateway process %s exited with %s; restarting it", proc.pid, proc.returncode)
                children[i] = spawn(i)
    hb_stop.set()
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    for s, _ in sockets:
        s.close()
    out.write("DICOM gateway stopped.\n")
    out.flush()
