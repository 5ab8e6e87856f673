"""The trail in PostgreSQL refuses UPDATE and DELETE, on the entries and on their seals; a row altered behind
the trigger's back (as a superuser could, by disabling it) is reported by verify_audit."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from apps.audit.models import AuditEntry, AuditSeal
from apps.audit.selectors import audit_verify
from apps.audit.services import audit_seal
from tests.audit.support import entries, tamper

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="triggers are PostgreSQL's")


@postgres_only
def test_update_and_delete_are_refused_on_entries_and_seals(db):
    first, _second = entries(2)
    audit_seal(settle_seconds=0)
    seal = AuditSeal.objects.get(entry=first)
    for statement, pk in (("UPDATE audit_auditentry SET object_id = 'x' WHERE id = %s", first.pk),
                          ("DELETE FROM audit_auditentry WHERE id = %s", first.pk),
                          ("UPDATE audit_auditseal SET seq = 99 WHERE id = %s", seal.pk),
                          ("DELETE FROM audit_auditseal WHERE id = %s", seal.pk)):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cur:
                cur.execute(statement, [pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=first.pk).update(actor_username="mallory")
    assert AuditEntry.objects.get(pk=first.pk).object_id == "0"
    assert audit_verify().intact


def test_row_altered_by_raw_sql_is_reported_by_verify_audit(db):
    rows = entries(5)
    audit_seal(settle_seconds=0)
    call_command("verify_audit")  # intact
    tamper("UPDATE audit_auditentry SET actor_username = 'mallory' WHERE id = %s", [rows[2].pk])
    with pytest.raises(CommandError, match="NOT intact"):
        call_command("verify_audit")
    assert [(p.entry_id, "does not match its MAC" in p.reason) for p in audit_verify().problems] == [
        (rows[2].pk, True)]


def test_forged_row_inserted_is_reported(db):
    rows = entries(2)
    forged = AuditEntry(at=rows[1].at, action="read", object_type="worklist.case", object_id="77", mac="0" * 64)
    forged.save(force_insert=True)
    assert [p.entry_id for p in audit_verify().problems] == [forged.pk]


def test_a_copied_row_is_refused(db):
    # Replaying a genuine entry (its content and MAC) would pass the MAC check: its uid makes it a duplicate.
    (row,) = entries(1)
    copy = AuditEntry.objects.get(pk=row.pk)
    copy.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        copy.save(force_insert=True)
