from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorklistConfig(AppConfig):
    name = "apps.worklist"
    verbose_name = _("Worklist")

    def ready(self) -> None:
        from apps.core.banner import WEB_STATUS_PROVIDERS
        from apps.core.views import ROLE_HOME
        from apps.studies.events import study_case_attach_register, study_late_images_subscribe
        from apps.worklist import more_actions  # noqa: F401  (registers the site's and the expert actions)
        from apps.worklist.ohif import ohif_status
        from apps.worklist.priors import actions  # noqa: F401  (registers the on-demand retrieval of a prior)
        from apps.worklist.services import case_attach_complete_study, case_late_images_record

        ROLE_HOME.setdefault("radiologist", "worklist:worklist")
        for role in ("emergency_physician", "radiographer"):
            ROLE_HOME.setdefault(role, "worklist:site_requests")
        # The studies' hooks (apps.studies.events): a complete study joins its case, late images reach its
        # timeline. Routing names its own task there (apps.routing.apps).
        study_case_attach_register(case_attach_complete_study)
        study_late_images_subscribe(case_late_images_record)
        WEB_STATUS_PROVIDERS.append(lambda: [ohif_status()])
