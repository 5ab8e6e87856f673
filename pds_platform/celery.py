"""The Celery application. A queue message is only a hint: PostgreSQL holds the truth."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pds_platform.settings")

app = Celery("pds_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_worker_heartbeat(sender: Celery, **kwargs: object) -> None:
    from apps.core.heartbeat import install_worker_heartbeat

    install_worker_heartbeat(sender)


# Periodic tasks are declared next to the tasks they run: each app's tasks module may define BEAT_SCHEDULE.
BEAT_MODULES = ("apps.studies.tasks", "apps.routing.tasks", "apps.worklist.tasks", "apps.api.tasks",
                "apps.dashboards.tasks", "apps.traceability.tasks", "apps.rosters.tasks")


@app.on_after_finalize.connect
def _collect_beat_schedule(sender: Celery, **kwargs: object) -> None:
    from importlib import import_module

    for name in BEAT_MODULES:
        try:
            module = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        sender.conf.beat_schedule.update(getattr(module, "BEAT_SCHEDULE", {}))
