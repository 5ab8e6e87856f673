"""The trail in PostgreSQL refuses UPDATE and DELETE; a row altered behind the trigger's back (as a
superuser could, by disabling it) is reported by verify_audit at the first broken link."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from apps.audit.models import AuditEntry
from apps.audit.selectors import audit_chain_verify
from apps.audit.services import audit_record

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="triggers are PostgreSQL's")


def _entries(n: int) -> list[AuditEntry]:
    return [audit_record(action="read", object_type="worklist.case", object_id=i, patient_data=True)
            for i in range(n)]


def test_update_and_delete_are_refused(db):
    first, _second = _entries(2)
    for statement in ("UPDATE audit_auditentry SET object_id = 'x' WHERE id = %s",
                      "DELETE FROM audit_auditentry WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cur:
                cur.execute(statement, [first.pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=first.pk).update(actor_username="mallory")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=first.pk).delete()
    assert AuditEntry.objects.get(pk=first.pk).object_id == "0"
    assert audit_chain_verify() == (AuditEntry.objects.count(), None)


def _as_superuser_bypassing_trigger(sql: str, params: list) -> None:
    with connection.cursor() as cur:
        cur.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER USER")
        cur.execute(sql, params)
        cur.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER USER")


def test_row_altered_by_raw_sql_is_reported_by_verify_audit(db):
    entries = _entries(5)
    call_command("verify_audit")  # intact
    _as_superuser_bypassing_trigger("UPDATE audit_auditentry SET actor_username = 'mallory' WHERE id = %s",
                                    [entries[2].pk])
    with pytest.raises(CommandError, match=f"broken at entry {entries[2].pk}: content does not match"):
        call_command("verify_audit")


def test_deleted_row_is_reported_at_the_next_link(db):
    entries = _entries(4)
    _as_superuser_bypassing_trigger("DELETE FROM audit_auditentry WHERE id = %s", [entries[1].pk])
    checked, broken = audit_chain_verify()
    assert checked == 1 and broken is not None and broken.entry_id == entries[2].pk
    assert "previous-hash" in broken.reason


def test_forged_row_inserted_is_reported(db):
    entries = _entries(2)
    forged = AuditEntry(at=entries[1].at, action="read", object_type="worklist.case", object_id="77",
                        prev_hash=entries[1].hash, hash="0" * 64)
    forged.save(force_insert=True)
    checked, broken = audit_chain_verify()
    assert (checked, broken.entry_id if broken else None) == (2, forged.pk)
