"""Issue an API key for a RIS integration. Prints the clear key once, on stdout alone (scriptable)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.api.models import ApiScope
from apps.api.services import api_key_create
from apps.core.context import acting_as


class Command(BaseCommand):
    help = "Create an API key scoped to one establishment (by FINESS); the key is printed once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--finess", required=True, help="FINESS number of the establishment")
        parser.add_argument("--name", required=True, help="name of the integration, e.g. 'RIS Xplore'")
        parser.add_argument("--scope", choices=ApiScope.values, default=ApiScope.READ)

    def handle(self, *args: Any, **opts: Any) -> None:
        from apps.regions.models import Establishment

        est = Establishment.objects.filter(finess=opts["finess"]).first()
        if est is None:
            raise CommandError(f"No establishment with FINESS {opts['finess']}.")
        with acting_as(channel="system", username="manage.py api_key_create"):
            key, raw = api_key_create(name=opts["name"], establishment_id=est.pk, scope=opts["scope"])
        self.stderr.write(f"Key {key.prefix}… for {est.name} ({key.get_scope_display()}). "
                          "Store it now: it is not kept and cannot be shown again.")
        self.stdout.write(raw)
