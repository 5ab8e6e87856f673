from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegionsConfig(AppConfig):
    name = "apps.regions"
    verbose_name = _("Regional mesh")

    def ready(self) -> None:
        from apps.core.banner import DICOM_SENDER_PROVIDERS
        from apps.regions.selectors import dicom_senders_active

        DICOM_SENDER_PROVIDERS.append(dicom_senders_active)
