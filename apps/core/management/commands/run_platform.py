"""Start the whole platform in the foreground: web, DICOM gateway, Celery worker and beat.

Each part is its own process (the DICOM listener never lives inside a worker).
Ctrl-C (or SIGTERM) stops them all cleanly; if one dies, the others are stopped too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import get_commands
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run web, DICOM gateway, Celery worker and beat together (the embedded demo)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--web-port", type=int, default=int(os.environ.get("PDS_WEB_PORT", "8000")))
        parser.add_argument("--web-host", default=os.environ.get("PDS_WEB_HOST", "127.0.0.1"))

    def handle(self, *args: Any, **opts: Any) -> None:
        py = sys.executable
        host, port = opts["web_host"], opts["web_port"]
        procs: dict[str, list[str]] = {
            "web": [py, "manage.py", "runserver", f"{host}:{port}", "--noreload", "--skip-checks"],
            "worker": [py, "-m", "celery", "-A", "pds_platform", "worker", "-l", "INFO", "--concurrency", "2",
                       "-n", "worker@%h"],
            "beat": [py, "-m", "celery", "-A", "pds_platform", "beat", "-l", "INFO"],
        }
        if "run_gateway" in get_commands():
            procs["gateway"] = [py, "manage.py", "run_gateway"]
        running: dict[str, subprocess.Popen[bytes]] = {}
        stopping = False

        def stop_all(*_: Any) -> None:
            nonlocal stopping
            if stopping:
                return
            stopping = True
            self.stdout.write("\nStopping the platform…")
            for p in running.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for p in running.values():
                try:
                    p.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
            self.stdout.write("All processes stopped.")

        signal.signal(signal.SIGINT, stop_all)
        signal.signal(signal.SIGTERM, stop_all)
        for name, cmd in procs.items():
            running[name] = subprocess.Popen(cmd, cwd=settings.BASE_DIR)
        time.sleep(2)
        self._banner(host, port, sorted(running))
        try:
            while not stopping:
                for name, p in running.items():
                    if p.poll() is not None and not stopping:
                        self.stderr.write(f"Process '{name}' exited with code {p.returncode}; stopping the others.")
                        stop_all()
                        sys.exit(1)
                time.sleep(0.5)
        finally:
            stop_all()

    def _banner(self, host: str, port: int, names: list[str]) -> None:
        from apps.regions.models import DicomNode

        base = f"http://{host}:{port}"
        nodes = DicomNode.objects.select_related("establishment").filter(active=True).order_by("ae_title")
        lines = [
            "",
            "=" * 72,
            "PDS Platform is running (" + ", ".join(names) + ")",
            f"  Web app ............ {base}/",
            f"  ARS admin .......... {base}/admin/",
            f"  Dashboard .......... {base}/dashboard/",
            f"  API docs (OpenAPI) . {base}/api/docs/",
            f"  Health ............. {base}/healthz",
            "",
            "Demo logins (password for all: pds-demo-2026):",
            "  coordinateur      ARS coordinator (admin, dashboard)",
            "  urgentiste        emergency physician, CH de Vierzon",
            "  radiologue        radiologist on the southern pooled line (CHRU Tours)",
            "  manip             radiographer, CH de Vierzon",
            "  admin.vierzon     establishment administrator, CH de Vierzon",
            "",
            f"DICOM gateway: host {settings.PDS_DICOM_HOST}, port {settings.PDS_DICOM_PORT}, "
            f"called AE title {settings.PDS_DICOM_AET}",
            "Sites may send from these calling AE titles (allowed from this machine):",
        ]
        lines += [f"  {n.ae_title:<16} {n.establishment.name}" for n in nodes[:20]]
        lines += [
            f"Try: echoscu -aet VIERZON_CT -aec {settings.PDS_DICOM_AET} 127.0.0.1 {settings.PDS_DICOM_PORT}",
            "Press Ctrl-C to stop everything.",
            "=" * 72,
        ]
        self.stdout.write("\n".join(lines))
