"""The parent process: serve binds the sockets, spawns and restarts the children, runs the reconciler."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

from dicom_gateway import storage
from dicom_gateway.config import GatewayConfig, tls_context
from dicom_gateway.handlers import db_reset

log = logging.getLogger("dicom_gateway")

RECONCILE_SECONDS = 1.0


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
            if result.completed or result.sent:
                log.info("studies complete: %s; routing sent: %s; pending: %s", list(result.completed),
                         list(result.sent), list(result.pending))
        except Exception:  # database down: try again next second
            log.warning("study reconciler failed", exc_info=True)
            db_reset()


def _unstored_sweep(root: Path, after_id: int, *, in_flight: int, batches: int = 40) -> int:
    """Remove the rows whose image file never reached the disk (apps.studies.services.instances_unstored_remove)
    among the rows after ``after_id``; returns where the next sweep starts."""
    from django.utils import timezone

    from apps.core.context import acting_as
    from apps.studies.services import instances_unstored_remove

    prefix = f"{os.fspath(root)}/"
    for _ in range(batches):
        with acting_as(channel="gateway"):
            removed, last = instances_unstored_remove(exists=lambda rel: os.path.exists(prefix + rel),
                                                      after_id=after_id, now=timezone.now(),
                                                      grace_seconds=settings.PDS_DICOM_UNSTORED_GRACE_SECONDS,
                                                      max_removals=in_flight)
        if removed:
            log.error("removed %s image rows whose files never reached the disk: %s", len(removed), removed[:20])
        if last == after_id:
            break
        after_id = last
    return after_id


def _sweep_loop(stop: threading.Event, root: Path, in_flight: int) -> None:
    """Each image's row is committed while its file is flushed (the image is acknowledged once both are done):
    a process killed between the two leaves a row without a file. This loop finds them, from the last rows
    before this start (whatever the time since) and then as rows age past the grace period, before the quiet
    period and the lease of their study could complete it."""
    from django.db import close_old_connections

    from apps.studies.services import instances_sweep_start

    after_id: int | None = None
    while True:
        try:
            close_old_connections()
            if after_id is None:
                after_id = instances_sweep_start()
            after_id = _unstored_sweep(root, after_id, in_flight=in_flight)
        except Exception:  # database down: again next time
            log.warning("unstored image sweep failed", exc_info=True)
            db_reset()
        if stop.wait(RECONCILE_SECONDS):
            return


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
    # At most one image per association can be between its row's commit and its file's flush.
    in_flight = config.workers * config.max_associations
    threading.Thread(target=_sweep_loop, args=(stopping, config.storage_root, in_flight), daemon=True,
                     name="sweeper").start()
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
