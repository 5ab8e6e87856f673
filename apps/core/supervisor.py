"""A small process supervisor for ``manage.py run_platform``.

Invariants:
- a child that dies is restarted, with a backoff that doubles while it keeps dying young (1 s up to 60 s)
  and starts again from 1 s once it has stayed up for a minute; the others are never stopped because of it;
- each child runs in its own process group, so a dead child's orphans (a Celery pool process, a gateway
  worker) are killed with it and its sockets are freed before it is started again;
- the state of every child (pid, restarts, last exit code and time) is published as the supervisor's
  heartbeat row, which ``/healthz`` reports; a database outage does not stop the supervision;
- stopping (Ctrl-C, SIGTERM) sends SIGTERM to every group, waits, then SIGKILLs what is left.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection
from django.utils import timezone

from apps.core.heartbeat import HEARTBEAT_SECONDS, heartbeat_beat

log = logging.getLogger("pds.supervisor")

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# A child that stayed up this long is considered healthy again: its next crash restarts it at once.
STABLE_AFTER_SECONDS = 60.0
SUPERVISOR_KIND = "supervisor"


@dataclass
class Child:
    name: str
    cmd: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = BACKOFF_FIRST_SECONDS
    restart_at: float | None = None
    last_exit: int | None = None
    last_exit_at: str | None = None

    def state(self) -> dict[str, Any]:
        running = self.proc is not None and self.proc.poll() is None
        return {"state": "running" if running else "restarting", "pid": self.proc.pid if running and self.proc else None,
                "restarts": self.restarts, "last_exit": self.last_exit, "last_exit_at": self.last_exit_at}


@dataclass
class Supervisor:
    cwd: Path
    children: dict[str, Child] = field(default_factory=dict)
    env: dict[str, str] | None = None
    clock: Callable[[], float] = time.monotonic
    stopping: bool = False
    _published_at: float = 0.0
    _name: str = field(default_factory=lambda: f"{SUPERVISOR_KIND}@{socket.gethostname()}:{os.getpid()}")

    def add(self, name: str, cmd: list[str]) -> None:
        self.children[name] = Child(name, cmd)

    def start_all(self) -> None:
        for child in self.children.values():
            self._start(child)
        self.publish(force=True)

    def _start(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.cmd, cwd=self.cwd, env=self.env, start_new_session=True)
        child.started_at = self.clock()
        child.restart_at = None

    def poll(self) -> None:
        """One supervision step: notice deaths, schedule and perform restarts, publish the state."""
        now = self.clock()
        changed = False
        for child in self.children.values():
            proc = child.proc
            if proc is not None and child.restart_at is None and proc.poll() is not None:
                self._reap_group(proc)
                child.last_exit, child.last_exit_at = proc.returncode, timezone.now().isoformat()
                if now - child.started_at >= STABLE_AFTER_SECONDS:
                    child.backoff = BACKOFF_FIRST_SECONDS
                delay = child.backoff
                child.backoff = min(child.backoff * 2, BACKOFF_MAX_SECONDS)
                child.restart_at = now + delay
                log.error("process '%s' (pid %s) exited with code %s; restarting it in %.0f s (restart #%d)",
                          child.name, proc.pid, proc.returncode, delay, child.restarts + 1)
                changed = True
            if child.restart_at is not None and now >= child.restart_at and not self.stopping:
                child.restarts += 1
                self._start(child)
                log.warning("process '%s' restarted (pid %s)", child.name, child.proc.pid if child.proc else "?")
                changed = True
        self.publish(force=changed)

    @staticmethod
    def _reap_group(proc: subprocess.Popen[bytes]) -> None:
        # The child led its own process group: whatever it left behind (pool processes) goes with it.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def status(self) -> dict[str, Any]:
        return {name: child.state() for name, child in self.children.items()}

    def publish(self, *, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._published_at < HEARTBEAT_SECONDS:
            return
        self._published_at = now
        try:
            # One long-lived connection; after a failure it is closed so that the next try reconnects.
            heartbeat_beat(self._name, SUPERVISOR_KIND, {"pid": os.getpid(), "children": self.status()})
        except Exception:  # the database may be down: supervision goes on, /healthz will say so
            log.warning("could not publish the supervisor state", exc_info=True)
            connection.close()

    def stop_all(self, timeout: float = 15.0) -> None:
        self.stopping = True
        live = [c.proc for c in self.children.values() if c.proc is not None and c.proc.poll() is None]
        # SIGTERM to each leader only: a Celery worker or gunicorn shuts its own pool down gracefully.
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in live:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("process %s did not stop within %.0f s; killing it", proc.pid, timeout)
        for child in self.children.values():
            if child.proc is not None:
                self._reap_group(child.proc)
                child.proc.poll()
        try:
            from apps.core.models import Heartbeat

            Heartbeat.objects.filter(name=self._name).delete()
        except Exception:
            log.warning("could not remove the supervisor heartbeat", exc_info=True)
