"""Studies stored with an impossible StudyDate (a modality's placeholder such as 00010101, or a date after
their arrival) lose it, as apps.studies.services now does on receipt: their images stay, the date goes."""

import datetime as dt

from django.db import migrations
from django.db.models import F, Q


def forget_implausible_study_dates(apps, schema_editor):
    Study = apps.get_model("studies", "Study")
    too_early = Q(study_datetime__lt=dt.datetime(1900, 1, 1, tzinfo=dt.UTC))
    too_late = Q(study_datetime__gt=F("first_received_at") + dt.timedelta(days=1))
    Study.objects.filter(too_early | too_late).update(study_datetime=None)


class Migration(migrations.Migration):
    dependencies = [("studies", "0003_study_routed_means_assigned")]

    operations = [migrations.RunPython(forget_implausible_study_dates, migrations.RunPython.noop)]
