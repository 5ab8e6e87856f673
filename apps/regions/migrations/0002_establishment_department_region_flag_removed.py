"""Public holidays follow each establishment's department (Alsace-Moselle: 57, 67, 68), not a region-wide flag.

The department of an existing establishment is taken from its FINESS number."""

import django.core.validators
from django.db import migrations, models

from apps.regions.calendar import finess_department

DEPARTMENT_VALIDATOR = django.core.validators.RegexValidator(
    "^(0[1-9]|[1-8][0-9]|9[0-5]|2A|2B|97[1-6])$", "A department code is 01 to 95, 2A, 2B or 971 to 976.")


def departments_from_finess(apps, schema_editor):  # type: ignore[no-untyped-def]
    Establishment = apps.get_model("regions", "Establishment")
    for est in Establishment.objects.filter(department="").only("pk", "finess"):
        Establishment.objects.filter(pk=est.pk).update(department=finess_department(est.finess))


class Migration(migrations.Migration):

    dependencies = [
        ("regions", "0001_initial"),
    ]

    operations = [
        migrations.RemoveField(model_name="region", name="alsace_moselle_holidays"),
        migrations.RemoveField(model_name="historicalregion", name="alsace_moselle_holidays"),
        migrations.AddField(
            model_name="establishment", name="department",
            field=models.CharField(blank=True, max_length=3, validators=[DEPARTMENT_VALIDATOR],
                                   help_text="INSEE code of the department (57, 67, 2A, 971...). Empty: taken from "
                                             "the FINESS number.", verbose_name="department")),
        migrations.AddField(
            model_name="historicalestablishment", name="department",
            field=models.CharField(blank=True, max_length=3, validators=[DEPARTMENT_VALIDATOR],
                                   help_text="INSEE code of the department (57, 67, 2A, 971...). Empty: taken from "
                                             "the FINESS number.", verbose_name="department")),
        migrations.RunPython(departments_from_finess, migrations.RunPython.noop),
    ]
