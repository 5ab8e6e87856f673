"""Recompute the steering dashboard's daily aggregates (after a deployment, a data import, a roster edit
to past shifts). Idempotent: each day is recomputed wholesale in its own transaction."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {value}") from exc


class Command(BaseCommand):
    help = "Recompute the dashboard's daily aggregates of every closed day (Europe/Paris) since a date."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=_date, default=None,
                            help="first day to recompute, YYYY-MM-DD (default: the day of the first case)")
        parser.add_argument("--until", type=_date, default=None,
                            help="last day to recompute, YYYY-MM-DD (default: yesterday)")

    def handle(self, *args: Any, **options: Any) -> None:
        from apps.dashboards.services import dashboard_aggregates_rebuild

        t0 = time.monotonic()
        days = dashboard_aggregates_rebuild(since=options["since"], until=options["until"])
        span = f"{days[0]} to {days[-1]}" if days else "nothing to do"
        self.stdout.write(self.style.SUCCESS(f"dashboard aggregates: {len(days)} days recomputed ({span}) "
                                             f"in {time.monotonic() - t0:.1f} s"))
