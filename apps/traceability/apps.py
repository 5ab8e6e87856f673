from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TraceabilityConfig(AppConfig):
    name = "apps.traceability"
    verbose_name = _("Traceability")

    def ready(self) -> None:
        from apps.studies.events import study_incident_subscribe
        from apps.traceability.services import incident_record

        # The ingest's technical incidents (apps.studies.events), recorded in the transaction that reports them.
        study_incident_subscribe(incident_record)
