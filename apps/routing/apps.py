from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RoutingConfig(AppConfig):
    name = "apps.routing"
    verbose_name = _("Routing")

    def ready(self) -> None:
        from apps.routing import case_actions  # noqa: F401  (registers acknowledge, decline, hand back)
