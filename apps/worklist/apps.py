from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorklistConfig(AppConfig):
    name = "apps.worklist"
    verbose_name = _("Worklist")

    def ready(self) -> None:
        from apps.core.views import ROLE_HOME

        ROLE_HOME.setdefault("radiologist", "worklist:worklist")
        for role in ("emergency_physician", "radiographer"):
            ROLE_HOME.setdefault(role, "worklist:site_requests")
