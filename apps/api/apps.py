from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "apps.api"
    verbose_name = _("RIS API")

    def ready(self) -> None:
        from apps.api import schema  # noqa: F401  (registers the OpenAPI security schemes)
        from apps.api.services import webhook_event_publish
        from apps.worklist.events import case_event_subscribe

        # Webhooks relay the case timeline: announced in the transaction that records each event.
        case_event_subscribe(webhook_event_publish)
