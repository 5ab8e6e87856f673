"""The one way to write the audit trail, and the sealer that chains it.

Writing (``audit_record``) is one INSERT in the caller's transaction and takes no lock: the entry's MAC
(HMAC-SHA256 under ``PDS_AUDIT_KEY``) covers only its own content, so concurrent writers never wait for each
other. A global lock here (the old hash chain, appended under ``pg_advisory_xact_lock``) serialised every
audited write of the platform and made the audit trail a deadlock partner of every other lock.

Ordering is added afterwards by the sealer (``audit_seal``, beat task ``audit.seal``), one at a time under its
own lock that no request takes. It chains every unsealed entry older than a settle delay, in id order, into
``AuditSeal`` rows (``seq`` without gaps, keyed chain hash), then appends a checkpoint (count, head, last entry
id, time; the line MACed and linked to the previous line) to ``PDS_AUDIT_CHECKPOINT_FILE``, a file the
database role cannot rewrite. Ids are not committed in id order on PostgreSQL (a transaction can hold a
smaller id and commit later): the sealer seals whatever is still unsealed, not "ids above the last one", so an
entry that committed late is sealed at the next run, at the end of the chain.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.models import AuditEntry, AuditSeal
from apps.core.context import ActorContext, current_actor
from apps.core.net import normalised_ip

GENESIS = "0" * 64
CHECKPOINT_VERSION = 1
# PostgreSQL advisory lock key of the sealer (session level, only ever taken by audit_seal).
_SEALER_LOCK_KEY = 7_311_420_002


# --- Keyed digests (public: verify_audit recomputes them) ---------------------------------------------------


def _subkey(purpose: str) -> bytes:
    # One key in the environment, one derived key per use: an entry MAC can never pass for a chain link.
    return hmac.new(settings.PDS_AUDIT_KEY.encode(), f"pds-audit/{purpose}".encode(), hashlib.sha256).digest()


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False).encode()


def entry_fields(entry: AuditEntry) -> dict[str, Any]:
    """Everything an entry says, as covered by its MAC."""
    return {
        "uid": str(entry.uid),
        "at": entry.at.isoformat(),
        "actor_id": entry.actor_id,
        "actor_username": entry.actor_username,
        "actor_role": entry.actor_role,
        "establishment_id": entry.establishment_id,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "object_repr": entry.object_repr,
        "patient_data": entry.patient_data,
        "channel": entry.channel,
        "ip": entry.ip,
        "details": entry.details,
    }


def entry_mac(entry: AuditEntry) -> str:
    return hmac.new(_subkey("entry"), _canonical(entry_fields(entry)), hashlib.sha256).hexdigest()


def chain_link(prev_hash: str, seq: int, entry_id: int, mac: str) -> str:
    """The sealed chain's hash at position ``seq``: it binds the position, the row and its MAC to all before."""
    message = f"{prev_hash}|{seq}|{entry_id}|{mac}".encode()
    return hmac.new(_subkey("chain"), message, hashlib.sha256).hexdigest()


def checkpoint_mac(record: dict[str, Any]) -> str:
    fields = {k: v for k, v in record.items() if k != "mac"}
    return hmac.new(_subkey("checkpoint"), _canonical(fields), hashlib.sha256).hexdigest()


# --- Writing ----------------------------------------------------------------------------------------------


def _fit(value: str, field_name: str) -> str:
    # PostgreSQL refuses an over-long value, and a refused audit row would fail the request it records.
    max_length = getattr(AuditEntry._meta.get_field(field_name), "max_length", None)
    return value[:max_length] if max_length else value


def audit_record(
    *,
    action: str,
    obj: Any = None,
    object_type: str = "",
    object_id: Any = "",
    object_repr: str = "",
    patient_data: bool = False,
    details: dict[str, Any] | None = None,
    actor: ActorContext | None = None,
    establishment_id: int | None = None,
) -> AuditEntry:
    """Append one entry, in the caller's transaction. ``actor`` defaults to the request/worker context
    (apps.core.context). No lock is taken: see the module docstring."""
    ctx = actor or current_actor()
    if obj is not None:
        object_type = object_type or f"{obj._meta.app_label}.{obj._meta.model_name}"
        object_id = object_id or obj.pk
        object_repr = object_repr or str(obj)
    entry = AuditEntry(
        at=timezone.now(),
        actor_id=ctx.user_id,
        actor_username=_fit(ctx.username, "actor_username"),
        actor_role=_fit(ctx.role, "actor_role"),
        establishment_id=establishment_id if establishment_id is not None else ctx.establishment_id,
        action=action,
        object_type=_fit(object_type, "object_type"),
        object_id=_fit("" if object_id is None else str(object_id), "object_id"),
        object_repr=_fit(object_repr, "object_repr"),
        patient_data=patient_data,
        channel=_fit(ctx.channel, "channel"),
        # Canonical text, as PostgreSQL's inet returns it (the MAC must match the row read back); anything
        # that is not an IP address is dropped rather than failing the audited request.
        ip=normalised_ip(ctx.ip),
        details=json.loads(json.dumps(details or {}, default=str)),
    )
    entry.mac = entry_mac(entry)
    entry.save(force_insert=True)
    return entry


def audit_read(obj: Any, *, patient_data: bool = True, details: dict[str, Any] | None = None) -> AuditEntry:
    return audit_record(action="read", obj=obj, patient_data=patient_data, details=details)


# --- Sealing ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SealRun:
    sealed: int  # entries sealed by this run
    head_seq: int  # length of the sealed chain after it
    checkpoint_written: bool
    busy: bool = False  # another sealer held the lock: nothing done


@contextlib.contextmanager
def _sealer_lock() -> Iterator[bool]:
    """One sealer at a time. PostgreSQL: a session advisory lock that only the sealer takes (requests never
    wait on it). SQLite is one machine's file: a file lock beside it does."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", [_SEALER_LOCK_KEY])
            acquired = bool(cur.fetchone()[0])
        try:
            yield acquired
        finally:
            if acquired:
                with connection.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", [_SEALER_LOCK_KEY])
        return
    path = Path(settings.VAR_DIR) / "audit-sealer.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _last_seal() -> AuditSeal | None:
    return AuditSeal.objects.select_related("entry").order_by("-seq").first()


def seal_scan_from(last: AuditSeal | None) -> Any:
    """Oldest ``at`` the sealer still looks at: a window behind its last seal for entries that committed
    late (a full scan of the table at every run would grow with the trail)."""
    if last is None:
        return None
    return last.entry.at - timedelta(seconds=settings.PDS_AUDIT_SEAL_LOOKBACK_SECONDS)


def _seal_batch(horizon: Any, batch: int) -> int:
    with transaction.atomic():
        last = _last_seal()
        seq, head = (last.seq, last.chain_hash) if last else (0, GENESIS)
        pending = AuditEntry.objects.filter(seal__isnull=True, at__lt=horizon)
        scan_from = seal_scan_from(last)
        if scan_from is not None:
            pending = pending.filter(at__gte=scan_from)
        rows = list(pending.order_by("id").values_list("id", "mac")[:batch])
        now = timezone.now()
        seals = []
        for entry_id, mac in rows:
            seq += 1
            head = chain_link(head, seq, entry_id, mac)
            seals.append(AuditSeal(entry_id=entry_id, seq=seq, chain_hash=head, sealed_at=now))
        # Unique seq and entry are the last guard should two sealers ever overlap: one of them fails.
        AuditSeal.objects.bulk_create(seals)
    return len(rows)


def audit_seal(*, settle_seconds: float | None = None, batch: int = 5000) -> SealRun:
    """Seal every unsealed entry older than the settle delay, then checkpoint the head. Safe to re-run."""
    settle = settings.PDS_AUDIT_SEAL_SETTLE_SECONDS if settle_seconds is None else settle_seconds
    with _sealer_lock() as acquired:
        if not acquired:
            return SealRun(sealed=0, head_seq=0, checkpoint_written=False, busy=True)
        total = 0
        written = False
        while True:
            horizon = timezone.now() - timedelta(seconds=settle)
            sealed = _seal_batch(horizon, batch)
            total += sealed
            # After the commit: a checkpoint must never vouch for seals that were rolled back.
            written = checkpoint_sync() or written
            if sealed < batch:
                break
        last = _last_seal()
        return SealRun(sealed=total, head_seq=last.seq if last else 0, checkpoint_written=written)


# --- Checkpoints ------------------------------------------------------------------------------------------


def checkpoint_path() -> Path:
    return Path(settings.PDS_AUDIT_CHECKPOINT_FILE)


def _read_last_line(fd: int) -> tuple[bytes, bool]:
    """The file's last complete line and whether the file ends with a newline."""
    size = os.fstat(fd).st_size
    if size == 0:
        return b"", True
    chunk = 4096
    data = b""
    offset = size
    while offset > 0:
        step = min(chunk, offset)
        offset -= step
        data = os.pread(fd, step, offset) + data
        if data.rstrip(b"\n").count(b"\n") >= 1:
            break
    ends_with_newline = data.endswith(b"\n")
    lines = data.rstrip(b"\n").split(b"\n")
    return lines[-1], ends_with_newline


def checkpoint_sync() -> bool:
    """Append a checkpoint of the current head unless the file's last line already is one. The file is
    opened O_APPEND only (an append-only mount or ``chattr +a`` allows nothing else) and locked while the
    line is written, so concurrent writers keep each line linked to the one before it."""
    last = _last_seal()
    if last is None:
        return False
    path = checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        tail, ends_with_newline = _read_last_line(fd)
        previous: dict[str, Any] = {}
        if tail:
            with contextlib.suppress(ValueError):
                previous = json.loads(tail)
        if previous.get("count") == last.seq and previous.get("head") == last.chain_hash:
            return False
        record: dict[str, Any] = {
            "v": CHECKPOINT_VERSION,
            "count": last.seq,
            "head": last.chain_hash,
            "last_id": last.entry_id,
            "at": timezone.now().isoformat(),
            "prev": str(previous.get("mac", "")),
        }
        record["mac"] = checkpoint_mac(record)
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        # A line cut short by a crash stays on its own line; verify_audit reports it.
        os.write(fd, (b"" if ends_with_newline else b"\n") + line.encode())
        os.fsync(fd)
        return True
    finally:
        os.close(fd)
