"""Tampering as the attacker of each scenario would: raw SQL past the append-only triggers (a superuser on
PostgreSQL; nothing to get past on SQLite)."""

from __future__ import annotations

from typing import Any

from django.db import connection

from apps.audit.models import AuditEntry
from apps.audit.services import audit_record

TABLES = ("audit_auditentry", "audit_auditseal")


def entries(n: int, **fields: Any) -> list[AuditEntry]:
    return [audit_record(action="read", object_type="worklist.case", object_id=i, patient_data=True, **fields)
            for i in range(n)]


def tamper(sql: str, params: list[Any] | tuple[Any, ...] = ()) -> None:
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            # Django's foreign keys are deferred: pending checks would forbid the ALTER TABLE below.
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in TABLES:
                cur.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cur.execute(sql, list(params))
        if connection.vendor == "postgresql":
            for table in TABLES:
                cur.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def delete_entries(ids: list[int]) -> None:
    """Remove entries and, as the attacker must (the foreign key), their seals."""
    marks = ",".join(["%s"] * len(ids))
    tamper(f"DELETE FROM audit_auditseal WHERE entry_id IN ({marks})", ids)
    tamper(f"DELETE FROM audit_auditentry WHERE id IN ({marks})", ids)
