from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RoutingConfig(AppConfig):
    name = "apps.routing"
    verbose_name = _("Routing")

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from apps.core.warmup import warm_up_register
        from apps.routing import case_actions  # noqa: F401  (registers acknowledge, decline, hand back)
        from apps.routing.followups import expert_request_alert
        from apps.routing.queue import ROUTE_TASK, enqueue_routing
        from apps.routing.redirections import ultrasound_redirect_notify
        from apps.routing.selectors import config_cache_clear, routing_warm_up
        from apps.studies.events import study_routing_task_register
        from apps.worklist.events import case_event_subscribe, case_routing_requester_register

        # Cases and complete studies are handed to routing through hooks in the layers below it.
        case_routing_requester_register(enqueue_routing)
        study_routing_task_register(ROUTE_TASK)
        warm_up_register(routing_warm_up)

        # The decision's configuration cache forgets what this process changes (apps.routing.selectors._cached).
        for signal in (post_save, post_delete, m2m_changed):
            signal.connect(config_cache_clear, dispatch_uid=f"routing-config-cache-{id(signal)}", weak=False)

        # An ultrasound study received by DICOM is redirected by the worklist; routing tells the site and the
        # coordinator (apps.routing.redirections).
        case_event_subscribe(ultrasound_redirect_notify)
        # The expert on duty is alerted when a second opinion is requested (the timeline is the outbox).
        case_event_subscribe(expert_request_alert)
