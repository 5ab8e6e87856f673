"""Start the whole platform in the foreground, supervised: web, DICOM gateway, Celery worker and beat.

Each part is its own process (the DICOM listener never lives inside a worker). The web app is served by
gunicorn in both configurations: the embedded default (SQLite, the embedded broker) and production
(``DJANGO_DEBUG=0``, PostgreSQL, Redis); with ``PDS_WEB_TLS_CERT`` and ``PDS_WEB_TLS_KEY`` it serves HTTPS.
A child that dies is restarted with backoff and reported in ``/healthz`` (``apps.core.supervisor``); the
others keep running. Ctrl-C (or SIGTERM) stops them all cleanly.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import get_commands
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from apps.core.banner import dicom_senders, web_status
from apps.core.supervisor import Supervisor

DEMO_PASSWORD = "pds-demo-2026"  # noqa: S105 - the published password of the demo region's accounts


def configuration_name() -> str:
    """Which of the two supported configurations this process runs, in a few words for the banner."""
    database = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(connection.vendor, connection.vendor)
    embedded_broker = settings.CELERY_BROKER_URL.startswith("filesystem")
    # Only the scheme: the URL may carry a password.
    broker = "embedded broker" if embedded_broker else f"{settings.CELERY_BROKER_URL.split(':', 1)[0]} broker"
    if not settings.DEBUG:
        kind = "production"
    elif connection.vendor == "sqlite" and embedded_broker:
        kind = "embedded default"
    else:
        kind = "development"
    return f"{kind} ({database}, {broker}, DEBUG {'on' if settings.DEBUG else 'off'})"


class Command(BaseCommand):
    help = "Run web (gunicorn), DICOM gateway, Celery worker and beat together, supervised."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--web-port", type=int, default=int(os.environ.get("PDS_WEB_PORT", "8000")))
        parser.add_argument("--web-host", default=os.environ.get("PDS_WEB_HOST", "127.0.0.1"))

    def handle(self, *args: Any, **opts: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        host, port = opts["web_host"], opts["web_port"]
        tls = (os.environ.get("PDS_WEB_TLS_CERT", ""), os.environ.get("PDS_WEB_TLS_KEY", ""))
        if bool(tls[0]) != bool(tls[1]):
            raise CommandError("PDS_WEB_TLS_CERT and PDS_WEB_TLS_KEY must be set together")
        supervisor = Supervisor(cwd=settings.BASE_DIR)
        for name, cmd in self._commands(host, port).items():
            supervisor.add(name, cmd)

        def stop(*_: Any) -> None:
            supervisor.stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        supervisor.start_all()
        time.sleep(2)
        scheme = "https" if tls[0] else "http"
        self._banner(f"{scheme}://{host}:{port}", sorted(supervisor.children))
        try:
            while not supervisor.stopping:
                supervisor.poll()
                time.sleep(0.5)
        finally:
            self.stdout.write("\nStopping the platform…")
            self.stdout.flush()
            supervisor.stop_all()
            self.stdout.write("All processes stopped.")

    @staticmethod
    def _commands(host: str, port: int) -> dict[str, list[str]]:
        py = sys.executable
        # Workers, threads, timeouts, access log and TLS come from the environment, read by the same gunicorn
        # settings module as the Docker image's web service.
        web = [py, "-m", "gunicorn", "-c", "python:pds_platform.gunicorn_conf", "--bind", f"{host}:{port}",
               "pds_platform.wsgi:application"]
        worker = [py, "-m", "celery", "-A", "pds_platform", "worker", "-l", "INFO",
                  "--concurrency", str(settings.CELERY_WORKER_CONCURRENCY), "-n", "worker@%h"]
        procs = {"web": web, "worker": worker}
        if not settings.CELERY_BROKER_URL.startswith("filesystem"):
            # Redis: routing decisions get a worker of their own (settings.CELERY_TASK_ROUTES); the embedded default
            # keeps one worker for both queues (SQLite has a single writer: more processes only wait for it).
            worker += ["-Q", settings.CELERY_TASK_DEFAULT_QUEUE]
            procs["router"] = [py, "-m", "celery", "-A", "pds_platform", "worker", "-l", "INFO",
                               "-Q", settings.ROUTING_QUEUE, "--concurrency", str(settings.PDS_ROUTER_CONCURRENCY),
                               "-n", "router@%h"]
        procs["beat"] = [py, "-m", "celery", "-A", "pds_platform", "beat", "-l", "INFO",
                         "-s", settings.CELERY_BEAT_SCHEDULE_FILENAME]
        if "run_gateway" in get_commands():
            procs["gateway"] = [py, "manage.py", "run_gateway"]
        return procs

    def _banner(self, base: str, names: list[str]) -> None:
        demo = get_user_model().objects.filter(username="coordinateur").exists()
        nodes = dicom_senders()
        lines = [
            "",
            "=" * 72,
            f"PDS Platform is running: {configuration_name()}",
            "  processes: " + ", ".join(names) + " (restarted if they die; see /healthz)",
            f"  Web app ............ {base}/",
            f"  ARS admin .......... {base}/admin/",
            f"  Dashboard .......... {base}/dashboard/",
            f"  API docs (OpenAPI) . {base}/api/docs/",
            f"  Health ............. {base}/healthz",
            *(f"  {line}" for line in web_status()),
            "",
        ]
        if demo:
            second_factor = ("second factor skipped in this demo" if settings.PDS_DEMO_SKIP_2FA else
                             "second factor required: the first login enrols an authenticator app (TOTP)")
            lines += [
                f"Demo logins (password for all: {DEMO_PASSWORD}; {second_factor}):",
                "  coordinateur      ARS coordinator (admin, dashboard)",
                "  urgentiste        emergency physician, CH de Vierzon",
                "  radiologue        radiologist on the southern pooled line (CHRU Tours)",
                "  manip             radiographer, CH de Vierzon",
                "  admin.vierzon     establishment administrator, CH de Vierzon",
                "",
            ]
        else:
            lines += ["No demo data: create the first account with `manage.py createsuperuser`.", ""]
        lines += [
            f"DICOM gateway: host {settings.PDS_DICOM_HOST}, port {settings.PDS_DICOM_PORT}, "
            f"called AE title {settings.PDS_DICOM_AET}",
        ]
        if nodes:
            lines.append("Sites may send from these calling AE titles:")
            lines += [f"  {ae_title:<16} {name}" for ae_title, name in nodes[:20]]
            first = nodes[0][0]
            lines.append(f"Try: echoscu -aet {first} -aec {settings.PDS_DICOM_AET} {settings.PDS_DICOM_HOST} "
                         f"{settings.PDS_DICOM_PORT}")
        lines += ["Press Ctrl-C to stop everything.", "=" * 72]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
