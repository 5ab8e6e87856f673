"""Processes other than web publish a heartbeat row every few seconds.

/healthz reads those rows: a process is up when its last heartbeat is
recent. This works the same on the embedded filesystem broker (which has no
broadcast for ``celery inspect ping``) and on Redis.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from typing import Any

from django.db import close_old_connections, connection
from django.utils import timezone

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5
# Four missed beats: one late write (a busy database) is not an outage, a process gone 20 s is.
STALE_AFTER = timedelta(seconds=20)


def heartbeat_beat(name: str, kind: str, info: dict[str, Any] | None = None) -> None:
    from apps.core.models import Heartbeat

    Heartbeat.objects.update_or_create(
        name=name, defaults={"kind": kind, "last_seen": timezone.now(), "info": info or {}}
    )


def heartbeat_alive(kind: str) -> bool:
    from apps.core.models import Heartbeat

    return Heartbeat.objects.filter(kind=kind, last_seen__gte=timezone.now() - STALE_AFTER).exists()


def heartbeat_age_seconds(kind: str) -> float | None:
    """Seconds since the freshest heartbeat of ``kind`` (None: never seen). Shown by /healthz beside the
    verdict, so that "down" says since when."""
    from django.db.models import Max

    from apps.core.models import Heartbeat

    last = Heartbeat.objects.filter(kind=kind).aggregate(last=Max("last_seen"))["last"]
    return None if last is None else round(max(0.0, (timezone.now() - last).total_seconds()), 1)


def supervised_processes() -> dict[str, Any] | None:
    """The children of the newest live ``run_platform`` supervisor (pid, restarts, last exit), or None when
    the platform is not run by one (e.g. one container per process under docker compose)."""
    from apps.core.models import Heartbeat

    info = (Heartbeat.objects.filter(kind="supervisor", last_seen__gte=timezone.now() - STALE_AFTER)
            .order_by("-last_seen").values_list("info", flat=True).first())
    return None if info is None else dict(info.get("children", {}))


def start_heartbeat_thread(kind: str, info: dict[str, Any] | None = None, name: str | None = None) -> threading.Event:
    name = name or f"{kind}@{socket.gethostname()}:{os.getpid()}"
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                close_old_connections()
                heartbeat_beat(name, kind, info)
            except Exception:  # a database outage must not kill the process; /healthz shows it
                log.warning("heartbeat %s failed", name, exc_info=True)
            finally:
                connection.close()
            stop.wait(HEARTBEAT_SECONDS)

    threading.Thread(target=run, name=f"heartbeat-{kind}", daemon=True).start()
    return stop


def install_worker_heartbeat(app: Any) -> None:
    from celery.signals import beat_init, worker_ready

    def on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
        start_heartbeat_thread("worker", {"hostname": getattr(sender, "hostname", "")})

    def on_beat_init(sender: Any = None, **kwargs: Any) -> None:
        start_heartbeat_thread("beat")

    worker_ready.connect(on_worker_ready, weak=False)
    beat_init.connect(on_beat_init, weak=False)
