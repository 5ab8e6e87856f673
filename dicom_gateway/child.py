"""One gateway child process: child_main, acceptor servers on the inherited sockets, the holds thread."""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import socket
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pydicom import config as pydicom_config
from pynetdicom import AE, _config, evt
from pynetdicom.transport import ThreadedAssociationServer

from dicom_gateway.config import (
    STORAGE_SOP_CLASSES,
    TRANSFER_SYNTAXES,
    VERIFICATION,
    GatewayConfig,
    tls_context,
)
from dicom_gateway.handlers import Gateway
from dicom_gateway.reactor import GatewayRequestHandler


class SharedSocketServer(ThreadedAssociationServer):
    """pynetdicom's threaded server on a listening socket inherited from the parent."""

    spool: Path | None = None  # the storage root (reactor.GatewayDIMSE spools images under it)

    def __init__(self, ae: AE, listen_sock: socket.socket, ae_title: str, contexts: list[Any],
                 ssl_context: ssl.SSLContext | None, evt_handlers: list[Any]) -> None:
        self._shared = listen_sock
        self._handing_off = 0  # connections accepted, association thread not yet started
        self._handing_off_lock = threading.Lock()
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
        # the others a head start, then tries (BlockingIOError if someone else took it). A connection
        # accepted but whose association thread has not started yet counts: without it, a child that
        # had just accepted one of several simultaneous connections looked idle and took the next one
        # too (4 associations went 3:1 in most benchmark rounds, one child saturated, the other idle).
        busy = len(self.active_associations) + self._handing_off
        if busy:
            time.sleep(min(0.003 * busy, 0.03))
        request = super().get_request()
        with self._handing_off_lock:
            self._handing_off += 1
        return request

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Hands the connection to its association thread (started before this returns: counted by
        ``active_associations`` from then on)."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._handing_off_lock:
                self._handing_off -= 1


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
    # Images yield the CPU to the rest of the platform (routing, alerts, pages) when it is short: PDS_DICOM_NICE.
    # The parent (its reconciler completes studies and hands them to routing) keeps its own priority.
    os.nice(config.nice)
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
        srv.spool = config.storage_root
        ae._servers.append(srv)
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True,
                         name=f"AcceptorServer-{fd}").start()
    stop = threading.Event()
    threading.Thread(target=gateway.holds_keep, args=(stop,), daemon=True, name="holds").start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for srv in servers:
        srv.shutdown()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(s.active_associations for s in servers):
        time.sleep(0.1)
    os._exit(0)
