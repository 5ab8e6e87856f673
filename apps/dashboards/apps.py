from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardsConfig(AppConfig):
    name = "apps.dashboards"
    verbose_name = _("Dashboards")

    def ready(self) -> None:
        from apps.core.views import ROLE_HOME

        # The steering dashboard is the landing page of the coordinator and of establishment administrators.
        ROLE_HOME.setdefault("ars_coordinator", "dashboards:home")
        ROLE_HOME.setdefault("establishment_admin", "dashboards:home")
