"""Bring the database and the static files up to date before the platform starts (`make run`, docker compose).

- Migrations, always.
- ``collectstatic`` in production (``DJANGO_DEBUG=0``): the manifest storage serves only collected, hashed
  files, and a template naming an asset missing from the manifest raises, so without it every page is a
  500. A Docker image collects at build time and passes ``--skip-collectstatic`` (its code is read-only).
- The demo region when ``PDS_LOAD_DEMO`` is on: by default in the embedded default, in production only when
  asked. Loading it is idempotent.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Migrate, collect static files (production) and load the demo region (PDS_LOAD_DEMO)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--skip-collectstatic", action="store_true",
                            help="static files were collected already (e.g. when the image was built)")

    def handle(self, *args: Any, **opts: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database schema up to date.")
        if not settings.DEBUG and not opts["skip_collectstatic"]:
            call_command("collectstatic", interactive=False, verbosity=0)
            self.stdout.write(f"Static files collected in {settings.STATIC_ROOT}.")
        if settings.PDS_LOAD_DEMO:
            call_command("load_demo")
        else:
            self.stdout.write("Demo region not loaded (set PDS_LOAD_DEMO=1 to load it).")
