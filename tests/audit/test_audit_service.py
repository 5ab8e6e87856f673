"""audit_record: the context it records, its MAC, and that it writes without any lock."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEntry
from apps.audit.selectors import audit_verify
from apps.audit.services import audit_record, entry_mac
from apps.core.context import ActorContext, acting_as


def test_audit_record_uses_context_and_macs_its_content(db):
    with acting_as(ActorContext(user_id=7, username="dr.x", role="radiologist", establishment_id=3,
                                ip="10.0.0.5", channel="web")):
        first = audit_record(action="read", object_type="worklist.case", object_id=42, patient_data=True)
    second = audit_record(action="update", object_type="regions.establishment", object_id=1)
    assert first.actor_username == "dr.x" and first.ip == "10.0.0.5" and first.channel == "web"
    assert first.establishment_id == 3 and first.patient_data
    assert second.channel == "system" and first.uid != second.uid
    stored = AuditEntry.objects.get(pk=first.pk)
    assert stored.mac == first.mac == entry_mac(stored)
    report = audit_verify()
    assert report.intact and (report.entries, report.unsealed) == (2, 2)


def test_one_insert_and_no_lock(db):
    with CaptureQueriesContext(connection) as queries:
        audit_record(action="read", object_type="x", object_id=1)
    statements = [q["sql"].upper() for q in queries.captured_queries]
    assert len(statements) == 1 and statements[0].startswith("INSERT"), statements
    assert not any("LOCK" in s or "FOR UPDATE" in s for s in statements)


def test_values_the_database_would_refuse_are_fitted_not_failed(db):
    # An address that is not one (finding 7: PostgreSQL's inet refused it and the request was a 500), an IPv6
    # written in long form and over-long text: stored as PostgreSQL gives them back, so the MAC still holds.
    with acting_as(ActorContext(username="u" * 400, ip="not-an-ip<script>", channel="web")):
        bad = audit_record(action="login_failed", object_type="accounts.user", object_repr="r" * 500)
    with acting_as(ActorContext(ip="2001:0DB8:0000::0001")):
        v6 = audit_record(action="read", object_type="x", object_id="9" * 100)
    bad.refresh_from_db()
    v6.refresh_from_db()
    assert bad.ip is None and len(bad.actor_username) == 150 and len(bad.object_repr) == 200
    assert v6.ip == "2001:db8::1" and len(v6.object_id) == 64
    assert audit_verify().intact


def test_alteration_is_reported_with_the_entry(db):
    from tests.audit.support import entries, tamper

    middle = entries(3)[1]
    tamper("UPDATE audit_auditentry SET object_id = '999' WHERE id = %s", [middle.pk])
    report = audit_verify()
    assert [p.entry_id for p in report.problems] == [middle.pk]
    assert "does not match its MAC" in report.problems[0].reason
