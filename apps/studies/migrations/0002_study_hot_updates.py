"""Per-image updates of a study and its series as heap-only (HOT) updates on PostgreSQL: no index on
``last_received_at`` and room left in each page (fillfactor) for the new row versions."""

from django.db import migrations, models

TABLES = ("studies_study", "studies_series")


def fillfactor(value: int):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {value})")
    return apply


class Migration(migrations.Migration):

    dependencies = [
        ("studies", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="study",
            name="last_received_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="last image"),
        ),
        migrations.RunPython(fillfactor(70), fillfactor(100)),
    ]
