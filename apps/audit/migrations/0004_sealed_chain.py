"""The unkeyed chain columns go; the sealed chain (AuditSeal) replaces them, append-only like the entries.

Entries keyed by 0003 are sealed by the first run of the sealer (beat task ``audit.seal``).
"""

import uuid

import django.db.models.deletion
from django.db import migrations, models

FORWARD = """
CREATE OR REPLACE FUNCTION audit_auditseal_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit trail is append-only: % refused on audit_auditseal', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS audit_auditseal_no_update ON audit_auditseal;
CREATE TRIGGER audit_auditseal_no_update BEFORE UPDATE OR DELETE ON audit_auditseal
    FOR EACH ROW EXECUTE FUNCTION audit_auditseal_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS audit_auditseal_no_update ON audit_auditseal;
DROP FUNCTION IF EXISTS audit_auditseal_refuse_change();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_keyed_entries")]

    operations = [
        migrations.AlterField(model_name="auditentry", name="uid",
                              field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
        migrations.RemoveField(model_name="auditentry", name="prev_hash"),
        migrations.RemoveField(model_name="auditentry", name="hash"),
        migrations.CreateModel(
            name="AuditSeal",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("seq", models.BigIntegerField(unique=True)),
                ("chain_hash", models.CharField(max_length=64)),
                ("sealed_at", models.DateTimeField()),
                ("entry", models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name="seal",
                                               to="audit.auditentry")),
            ],
            options={"verbose_name": "audit seal", "verbose_name_plural": "audit seals", "ordering": ["seq"]},
        ),
        migrations.RunPython(forward, backward, elidable=False),
    ]
