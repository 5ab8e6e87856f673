from __future__ import annotations

from dataclasses import dataclass

from apps.audit.models import AuditEntry
from apps.audit.services import chained_fields, entry_digest


@dataclass(frozen=True)
class ChainBreak:
    entry_id: int
    reason: str


def audit_chain_verify(batch: int = 5000) -> tuple[int, ChainBreak | None]:
    """Walk the chain in id order; return (entries checked, first broken link or None)."""
    prev = ""
    checked = 0
    last_id = 0
    while True:
        rows = list(AuditEntry.objects.filter(id__gt=last_id).order_by("id")[:batch])
        if not rows:
            return checked, None
        for e in rows:
            if e.prev_hash != prev:
                return checked, ChainBreak(e.id, "previous-hash link does not match (an entry was removed or altered)")
            if e.hash != entry_digest(e.prev_hash, chained_fields(e)):
                return checked, ChainBreak(e.id, "content does not match its hash (the entry was altered)")
            prev = e.hash
            checked += 1
            last_id = e.id
