from apps.audit.models import AuditEntry
from apps.audit.selectors import audit_chain_verify
from apps.audit.services import audit_record
from apps.core.context import ActorContext, acting_as


def test_audit_record_uses_context_and_chains(db):
    with acting_as(ActorContext(user_id=7, username="dr.x", role="radiologist", establishment_id=3,
                                ip="10.0.0.5", channel="web")):
        first = audit_record(action="read", object_type="worklist.case", object_id=42, patient_data=True)
    second = audit_record(action="update", object_type="regions.establishment", object_id=1)
    assert first.actor_username == "dr.x" and first.ip == "10.0.0.5" and first.channel == "web"
    assert first.establishment_id == 3 and first.patient_data
    assert second.prev_hash == first.hash and second.channel == "system"
    assert audit_chain_verify() == (AuditEntry.objects.count(), None)


def test_chain_detects_alteration(db):
    for i in range(3):
        audit_record(action="read", object_type="x", object_id=i)
    middle = AuditEntry.objects.order_by("id")[1]
    from django.db import connection

    with connection.cursor() as cur:  # in PostgreSQL only a superuser can get past the append-only trigger
        if connection.vendor == "postgresql":
            cur.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER USER")
        cur.execute("UPDATE audit_auditentry SET object_id = '999' WHERE id = %s", [middle.pk])
        if connection.vendor == "postgresql":
            cur.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER USER")
    checked, broken = audit_chain_verify()
    assert broken is not None and broken.entry_id == middle.pk and checked == 1
