"""Run the DICOM gateway (C-ECHO / C-STORE SCP) in the foreground: ``manage.py run_gateway``.

The command lives with the gateway, so that studies (which the gateway uses) never imports it back."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand

from dicom_gateway.server import GatewayConfig, child_main, serve


class Command(BaseCommand):
    help = "Run the DICOM gateway: receives studies from the requesting sites (see PDS_DICOM_* settings)."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-reconcile", action="store_true",
                            help="do not complete studies / send routing messages from this process")
        parser.add_argument("--child", default="", help=("internal: run one worker process on the inherited "
                                                         "listening sockets 'fd:tls,...'"))
        parser.add_argument("--parent-pid", type=int, default=0, help="internal")

    def handle(self, *args: Any, **opts: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s gateway[%(process)d] %(levelname)s %(message)s")
        config = GatewayConfig.from_settings()
        if opts["child"]:
            fds = [(int(fd), tls == "1") for fd, tls in (p.split(":") for p in opts["child"].split(","))]
            child_main(config, fds, opts["parent_pid"])
            return
        serve(config, reconcile=not opts["no_reconcile"], out=self.stdout)
