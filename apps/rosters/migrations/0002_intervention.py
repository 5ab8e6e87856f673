import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("rosters", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Intervention",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created at")),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated at")),
                ("start", models.DateTimeField(verbose_name="start (leaving home)")),
                ("end", models.DateTimeField(verbose_name="end (back home)")),
                ("note", models.CharField(blank=True, max_length=300, verbose_name="note")),
                ("recorded_by", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+",
                                                  to=settings.AUTH_USER_MODEL, verbose_name="recorded by")),
                ("shift", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                            related_name="interventions", to="rosters.shift",
                                            verbose_name="astreinte")),
            ],
            options={
                "verbose_name": "astreinte intervention",
                "verbose_name_plural": "astreinte interventions",
                "ordering": ["start"],
                "constraints": [models.CheckConstraint(condition=models.Q(("end__gt", models.F("start"))),
                                                       name="intervention_end_after_start")],
            },
        ),
    ]
