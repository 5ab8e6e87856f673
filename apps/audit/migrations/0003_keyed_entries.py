"""Entries keyed: each existing row gets its random ``uid`` and its MAC under PDS_AUDIT_KEY.

The old unkeyed SHA-256 chain (prev_hash/hash) is verified first, as the old ``verify_audit`` did: the MAC
then vouches for the rows as they stood, so a chain that is already broken stops the migration (run the
previous release's ``manage.py verify_audit`` and investigate before upgrading) instead of being blessed.
The digest functions are copied here as they are at this migration, not imported: a later change to
``apps.audit.services`` must not change what this migration computed.
"""

import hashlib
import hmac
import json
import uuid

from django.conf import settings
from django.db import migrations, models


def _legacy_digest(prev_hash, entry):
    fields = {
        "at": entry.at.isoformat(), "actor_id": entry.actor_id, "actor_username": entry.actor_username,
        "actor_role": entry.actor_role, "establishment_id": entry.establishment_id, "action": entry.action,
        "object_type": entry.object_type, "object_id": entry.object_id, "object_repr": entry.object_repr,
        "patient_data": entry.patient_data, "channel": entry.channel, "ip": entry.ip, "details": entry.details,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + "|" + canonical).encode()).hexdigest()


def _mac(entry):
    key = hmac.new(settings.PDS_AUDIT_KEY.encode(), b"pds-audit/entry", hashlib.sha256).digest()
    fields = {
        "uid": str(entry.uid), "at": entry.at.isoformat(), "actor_id": entry.actor_id,
        "actor_username": entry.actor_username, "actor_role": entry.actor_role,
        "establishment_id": entry.establishment_id, "action": entry.action, "object_type": entry.object_type,
        "object_id": entry.object_id, "object_repr": entry.object_repr, "patient_data": entry.patient_data,
        "channel": entry.channel, "ip": entry.ip, "details": entry.details,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def key_existing_entries(apps, schema_editor):
    AuditEntry = apps.get_model("audit", "AuditEntry")
    db = schema_editor.connection.alias
    postgres = schema_editor.connection.vendor == "postgresql"
    prev = ""
    pending = []
    if postgres:  # the append-only trigger (0002) refuses UPDATE; only this migration's one-off fill passes
        schema_editor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_auditentry_no_update")
    for entry in AuditEntry.objects.using(db).order_by("id").iterator(chunk_size=2000):
        if entry.prev_hash != prev or entry.hash != _legacy_digest(entry.prev_hash, entry):
            raise RuntimeError(
                f"audit trail already broken at entry {entry.id} before it is keyed: refusing to vouch for it. "
                "Run the previous release's `manage.py verify_audit` and investigate before upgrading.")
        prev = entry.hash
        entry.uid = uuid.uuid4()
        entry.mac = _mac(entry)
        pending.append(entry)
        if len(pending) >= 1000:
            AuditEntry.objects.using(db).bulk_update(pending, ["uid", "mac"])
            pending = []
    if pending:
        AuditEntry.objects.using(db).bulk_update(pending, ["uid", "mac"])
    if postgres:
        schema_editor.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER audit_auditentry_no_update")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers")]

    operations = [
        migrations.AddField(model_name="auditentry", name="uid", field=models.UUIDField(null=True, editable=False)),
        migrations.AddField(model_name="auditentry", name="mac",
                            field=models.CharField(default="", editable=False, max_length=64),
                            preserve_default=False),
        migrations.RunPython(key_existing_entries, migrations.RunPython.noop, elidable=False),
    ]
