"""The one way to write the audit trail. Call it in the same transaction as the change it records."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.core.context import ActorContext, current_actor

# Arbitrary constant key for the PostgreSQL advisory lock that serialises chain appends.
_CHAIN_LOCK_KEY = 7_311_420_001


def entry_digest(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + "|" + canonical).encode()).hexdigest()


def chained_fields(entry: AuditEntry) -> dict[str, Any]:
    return {
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
    """Append one entry. ``actor`` defaults to the request/worker context (apps.core.context)."""
    ctx = actor or current_actor()
    if obj is not None:
        object_type = object_type or f"{obj._meta.app_label}.{obj._meta.model_name}"
        object_id = object_id or obj.pk
        object_repr = object_repr or str(obj)[:200]
    entry = AuditEntry(
        at=timezone.now(),
        actor_id=ctx.user_id,
        actor_username=ctx.username,
        actor_role=ctx.role,
        establishment_id=establishment_id if establishment_id is not None else ctx.establishment_id,
        action=action,
        object_type=object_type,
        object_id="" if object_id is None else str(object_id),
        object_repr=object_repr[:200],
        patient_data=patient_data,
        channel=ctx.channel,
        ip=ctx.ip,
        details=json.loads(json.dumps(details or {}, default=str)),
    )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Held to the end of the enclosing transaction: appends are serialised so the chain has no fork.
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        last = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
        entry.prev_hash = last or ""
        entry.hash = entry_digest(entry.prev_hash, chained_fields(entry))
        entry.save(force_insert=True)
    return entry


def audit_read(obj: Any, *, patient_data: bool = True, details: dict[str, Any] | None = None) -> AuditEntry:
    return audit_record(action="read", obj=obj, patient_data=patient_data, details=details)
