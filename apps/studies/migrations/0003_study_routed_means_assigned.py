"""``routed`` now means that routing took the study's case in hand (assigned, held, or escalated to the
coordinator), no longer that the routing message was sent. Studies marked ``routed`` whose case nobody has
go back to ``complete`` (awaiting assignment); their ``routing_enqueued_at`` stays, so the message is not sent
again, and the routing reconciler routes their case. ORM only: the same on SQLite and PostgreSQL."""

from django.db import migrations, models

HANDLED = ("offered", "acknowledged", "coordinator")


def routed_only_when_handled(apps, schema_editor):
    Study = apps.get_model("studies", "Study")
    (Study.objects.filter(status="routed")
     .exclude(case__assignment_state__in=HANDLED).exclude(case__claimed_by__isnull=False)
     .update(status="complete"))


def routed_when_sent(apps, schema_editor):
    Study = apps.get_model("studies", "Study")
    Study.objects.filter(status="complete", routing_enqueued_at__isnull=False).update(status="routed")


class Migration(migrations.Migration):

    dependencies = [
        ("studies", "0002_study_hot_updates"),
        ("worklist", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="study",
            name="status",
            field=models.CharField(choices=[("receiving", "Receiving"),
                                            ("complete", "Complete, awaiting assignment"),
                                            ("routed", "Routed: case assigned or escalated to the coordinator"),
                                            ("not_routed", "Stored, not routed (ultrasound)")],
                                   db_index=True, default="receiving", max_length=12, verbose_name="status"),
        ),
        migrations.RunPython(routed_only_when_handled, routed_when_sent),
    ]
