"""Reading the audit trail back: ``audit_verify`` (``manage.py verify_audit``) and the sealer's lag.

What verification proves, given the key (``PDS_AUDIT_KEY``) is not known to whoever changed the data:
- every entry's MAC matches its content: an edited row is named (recomputing it needs the key);
- the sealed chain runs 1..n without a gap and each link matches: a sealed entry removed in the middle, or
  rows renumbered, or the chain recomputed without the key, is named;
- each checkpoint line of the file is intact (its MAC), linked to the line before it, and the database's
  chain passes through it (same head at that count, same entry): deleting the last entries (and their
  seals) leaves the chain shorter than a checkpoint, which is reported as truncation;
- an unsealed entry older than the sealer's look-back window was inserted behind its back (or committed
  absurdly late) and is reported. Entries not yet sealed are counted and their age given (the sealing lag):
  they are protected by their MAC only, so removing them is not detected until they are sealed.
"""

from __future__ import annotations

import hmac
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from apps.audit.models import AuditEntry, AuditSeal
from apps.audit.services import (
    GENESIS,
    chain_link,
    checkpoint_mac,
    checkpoint_path,
    entry_mac,
    seal_scan_from,
)

MAX_PROBLEMS = 200  # beyond this the report says how many more; the first ones are what an auditor needs


@dataclass(frozen=True)
class AuditProblem:
    reason: str
    entry_id: int | None = None


@dataclass
class AuditVerification:
    entries: int = 0
    sealed: int = 0
    unsealed: int = 0
    checkpoints: int = 0
    oldest_unsealed_age: float | None = None  # seconds: how far sealing lags
    problems: list[AuditProblem] = field(default_factory=list)
    more_problems: int = 0

    @property
    def intact(self) -> bool:
        return not self.problems

    def add(self, reason: str, entry_id: int | None = None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(AuditProblem(reason, entry_id))
        else:
            self.more_problems += 1


@dataclass(frozen=True)
class _Checkpoint:
    line: int
    count: int
    head: str
    last_id: int


def _read_checkpoints(report: AuditVerification) -> list[_Checkpoint] | None:
    """Parse and authenticate the checkpoint file; None when there is no file."""
    path = checkpoint_path()
    if not path.exists():
        return None
    checkpoints: list[_Checkpoint] = []
    prev_mac = ""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
                stored = str(record["mac"])
                checkpoint = _Checkpoint(number, int(record["count"]), str(record["head"]),
                                         int(record["last_id"]))
            except (ValueError, KeyError, TypeError):
                report.add(f"checkpoint file line {number} is not a checkpoint (altered or cut short)")
                prev_mac = ""
                continue
            if not hmac.compare_digest(stored, checkpoint_mac(record)):
                report.add(f"checkpoint file line {number} was altered (its MAC does not match)")
            elif record.get("prev", "") != prev_mac:
                report.add(f"checkpoint file line {number} does not follow the line before it "
                           "(a checkpoint was removed or the lines reordered)")
            else:
                checkpoints.append(checkpoint)
            prev_mac = stored
    report.checkpoints = len(checkpoints)
    return checkpoints


def _verify_entries(report: AuditVerification, now: datetime, batch: int) -> None:
    last_seal = AuditSeal.objects.select_related("entry").order_by("-seq").first()
    never_sealed_before = seal_scan_from(last_seal)
    oldest_unsealed: datetime | None = None
    last_id = 0
    while True:
        rows = list(AuditEntry.objects.filter(id__gt=last_id).select_related("seal").order_by("id")[:batch])
        if not rows:
            break
        for entry in rows:
            report.entries += 1
            last_id = entry.id
            if not hmac.compare_digest(entry.mac, entry_mac(entry)):
                report.add(f"entry {entry.id} was altered: its content does not match its MAC", entry.id)
            if not hasattr(entry, "seal"):
                report.unsealed += 1
                if never_sealed_before is not None and entry.at < never_sealed_before:
                    report.add(f"entry {entry.id} ({entry.at:%Y-%m-%d %H:%M:%S}) is older than the sealer's "
                               "look-back and was never sealed: inserted behind the sealer's back", entry.id)
                elif oldest_unsealed is None or entry.at < oldest_unsealed:
                    oldest_unsealed = entry.at
    if oldest_unsealed is not None:
        report.oldest_unsealed_age = max(0.0, (now - oldest_unsealed).total_seconds())


def _verify_chain(report: AuditVerification, checkpoints: list[_Checkpoint] | None, batch: int) -> None:
    by_count: dict[int, list[_Checkpoint]] = defaultdict(list)
    for cp in checkpoints or []:
        by_count[cp.count].append(cp)
    head, expected, last_seq = GENESIS, 1, 0
    while True:
        rows = list(AuditSeal.objects.filter(seq__gt=last_seq).order_by("seq")
                    .values_list("seq", "entry_id", "chain_hash", "entry__mac")[:batch])
        if not rows:
            break
        for seq, entry_id, chain_hash, mac in rows:
            if seq != expected:
                report.add(f"sealed chain has a gap: positions {expected}..{seq - 1} are missing "
                           "(sealed entries were deleted)", entry_id)
                head = chain_hash  # resynchronise, to report what follows on its own merits
            elif not hmac.compare_digest(chain_hash, chain_link(head, seq, entry_id, mac)):
                report.add(f"sealed chain broken at position {seq} (entry {entry_id}): the chain was "
                           "recomputed, or entries reordered, removed or replaced", entry_id)
                head = chain_hash
            else:
                head = chain_hash
            for cp in by_count.pop(seq, []):
                if cp.head != chain_hash or cp.last_id != entry_id:
                    report.add(f"checkpoint file line {cp.line} (count {cp.count}) does not match the sealed "
                               f"chain at position {seq}: the trail was rewritten since", entry_id)
            report.sealed += 1
            expected, last_seq = seq + 1, seq
    for count, cps in sorted(by_count.items()):
        for cp in cps:
            report.add(f"truncated: checkpoint file line {cp.line} vouches for {count} sealed entries, "
                       f"the database has {last_seq}")
    if checkpoints is None and report.sealed:
        report.add(f"no checkpoint file at {checkpoint_path()} while {report.sealed} entries are sealed: "
                   "truncation cannot be ruled out")


def audit_verify(batch: int = 5000) -> AuditVerification:
    """Check every entry, the sealed chain and the checkpoint file (see the module docstring)."""
    report = AuditVerification()
    now = timezone.now()
    checkpoints = _read_checkpoints(report)
    _verify_chain(report, checkpoints, batch)
    _verify_entries(report, now, batch)
    return report


def audit_seal_lag_seconds() -> float:
    """Age of the oldest entry the sealer should already have sealed (0 when it is keeping up)."""
    last_seal = AuditSeal.objects.select_related("entry").order_by("-seq").first()
    horizon = timezone.now() - timedelta(seconds=settings.PDS_AUDIT_SEAL_SETTLE_SECONDS)
    pending = AuditEntry.objects.filter(seal__isnull=True, at__lt=horizon)
    scan_from = seal_scan_from(last_seal)
    if scan_from is not None:
        pending = pending.filter(at__gte=scan_from)
    oldest = pending.order_by("at").values_list("at", flat=True).first()
    return 0.0 if oldest is None else (timezone.now() - oldest).total_seconds()
