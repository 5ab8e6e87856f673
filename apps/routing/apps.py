from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RoutingConfig(AppConfig):
    name = "apps.routing"
    verbose_name = _("Routing")

    def ready(self) -> None:
        from apps.routing import case_actions  # noqa: F401  (registers acknowledge, decline, hand back)
        from apps.routing.queue import ROUTE_TASK, enqueue_routing
        from apps.studies.events import study_routing_task_register
        from apps.worklist.events import case_routing_requester_register

        # Cases and complete studies are handed to routing through hooks in the layers below it.
        case_routing_requester_register(enqueue_routing)
        study_routing_task_register(ROUTE_TASK)
