from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "apps.api"
    verbose_name = _("RIS API")

    def ready(self) -> None:
        from apps.api import schema  # noqa: F401  (registers the OpenAPI security schemes)
