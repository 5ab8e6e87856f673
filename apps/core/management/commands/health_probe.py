"""Health of one process of this host, for a container health check (docker compose runs one per service).

``/healthz`` tells the health of the whole platform; a container must say whether *its own* process works:
- ``web``: gunicorn on this host answers ``/healthz`` and reaches the database (a 503 because another
  component is down still means the web process works);
- ``worker``, ``beat``, ``gateway``: a process of that kind on this host wrote its heartbeat row recently
  (``apps.core.heartbeat``: the same signal ``/healthz`` reads, narrowed to this host name).
Exit status 0 when healthy, 1 otherwise, with one line saying why.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone

from apps.core.heartbeat import STALE_AFTER


def _served_host_name() -> str:
    """A Host header the web app accepts (ALLOWED_HOSTS), so the probe is not refused with a 400."""
    for host in settings.ALLOWED_HOSTS:
        if host == "*":
            return "localhost"
        return host.lstrip(".")
    return "localhost"


def _probe_web() -> str:
    bind_host = os.environ.get("PDS_WEB_HOST", "127.0.0.1")
    address = "127.0.0.1" if bind_host in ("", "0.0.0.0", "::") else bind_host
    port = int(os.environ.get("PDS_WEB_PORT", "8000"))
    conn: http.client.HTTPConnection
    if os.environ.get("PDS_WEB_TLS_CERT"):
        # Our own process on this host: its certificate names the public host, not the loopback address.
        conn = http.client.HTTPSConnection(address, port, timeout=10, context=ssl._create_unverified_context())
    else:
        conn = http.client.HTTPConnection(address, port, timeout=10)
    # Behind the reverse proxy that terminates TLS, HTTP requests say so; otherwise production redirects them.
    conn.request("GET", "/healthz", headers={"Host": _served_host_name(), "X-Forwarded-Proto": "https"})
    res = conn.getresponse()
    body = res.read()
    if res.status not in (200, 503):
        raise CommandError(f"web: /healthz answered HTTP {res.status}")
    health = json.loads(body)
    database = health.get("checks", {}).get("database")
    if database != "ok":
        raise CommandError(f"web: database {database}")
    return f"web: /healthz answered {res.status} ({health.get('status')})"


def _probe_heartbeat(kind: str) -> str:
    from apps.core.models import Heartbeat

    prefix = f"{kind}@{socket.gethostname()}:"
    last = (Heartbeat.objects.filter(kind=kind, name__startswith=prefix).order_by("-last_seen")
            .values_list("last_seen", flat=True).first())
    if last is None:
        raise CommandError(f"{kind}: no heartbeat from this host yet")
    age = timezone.now() - last
    if age > STALE_AFTER:
        raise CommandError(f"{kind}: last heartbeat {age.total_seconds():.0f} s ago")
    return f"{kind}: heartbeat {age.total_seconds():.0f} s ago"


class Command(BaseCommand):
    help = "Exit 0 if the web app, worker, beat or gateway of this host is healthy (container health checks)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("component", choices=["web", "worker", "beat", "gateway"])

    def handle(self, *args: Any, **opts: Any) -> None:
        component = opts["component"]
        try:
            line = _probe_web() if component == "web" else _probe_heartbeat(component)
        except (OSError, ValueError, http.client.HTTPException, DatabaseError) as exc:
            raise CommandError(f"{component}: {exc.__class__.__name__}: {exc}") from exc
        self.stdout.write(line)
