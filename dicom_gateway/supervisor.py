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
