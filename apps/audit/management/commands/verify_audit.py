from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.selectors import audit_verify


class Command(BaseCommand):
    help = ("Verify the audit trail: every entry's MAC, the sealed chain and the checkpoint file "
            "(PDS_AUDIT_CHECKPOINT_FILE). Exits non-zero on the first sign of tampering.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--max-lag", type=float, default=None, metavar="SECONDS",
                            help="also fail when the oldest unsealed entry is older than this (monitoring)")

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_verify()
        lag = report.oldest_unsealed_age
        summary = (f"{report.entries} entries, {report.sealed} sealed, {report.unsealed} not yet sealed"
                   + (f" (oldest {lag:.0f} s)" if lag is not None else "")
                   + f", {report.checkpoints} checkpoint lines")
        if not report.intact:
            for problem in report.problems:
                self.stderr.write(f"- {problem.reason}")
            if report.more_problems:
                self.stderr.write(f"- ... and {report.more_problems} more")
            raise CommandError(f"audit trail NOT intact: {len(report.problems) + report.more_problems} "
                               f"problem(s); {summary}")
        max_lag = options["max_lag"]
        if max_lag is not None and lag is not None and lag > max_lag:
            raise CommandError(f"audit trail intact but sealing lags {lag:.0f} s (> {max_lag:.0f} s); {summary}")
        self.stdout.write(self.style.SUCCESS(f"audit trail intact: {summary}"))
