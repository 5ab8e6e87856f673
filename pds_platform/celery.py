"""The Celery application. A queue message is only a hint: PostgreSQL holds the truth."""

import logging
import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pds_platform.settings")

app = Celery("pds_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class DueTaskLinesAtDebug(logging.Filter):
    """Beat logs each send ("Scheduler: Sending due task ...") at INFO: with the studies reconciler due every two
    seconds, that line buries everything else a person reads in the beat log. It is demoted to DEBUG (shown with
    ``-l DEBUG``); "beat: Starting...", errors and the other lines are untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and str(record.msg).startswith("Scheduler: Sending due task"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


logging.getLogger("celery.beat").addFilter(DueTaskLinesAtDebug())


@app.on_after_configure.connect
def _forget_false_deprecations(sender: Celery, **kwargs: object) -> None:
    # Read with namespace="CELERY", CELERY_TIMEZONE and CELERY_RESULT_BACKEND are the new names (timezone,
    # result_backend), but Celery takes them for their pre-4.0 homonyms and prints a deprecation warning at every
    # worker start (celery/celery#6366).
    if sender.conf.deprecated_settings:
        sender.conf.deprecated_settings -= {"CELERY_TIMEZONE", "CELERY_RESULT_BACKEND"}


@app.on_after_finalize.connect
def _install_worker_heartbeat(sender: Celery, **kwargs: object) -> None:
    from apps.core.heartbeat import install_worker_heartbeat

    install_worker_heartbeat(sender)


# Periodic tasks are declared next to the tasks they run: each app's tasks module may define BEAT_SCHEDULE.
# Only modules that exist: a missing one is an error at start, not a schedule silently left out
# (tests/core/test_beat_modules.py checks the list against apps/*/tasks.py).
BEAT_MODULES = ("apps.studies.tasks", "apps.routing.tasks", "apps.api.tasks", "apps.dashboards.tasks",
                "apps.traceability.tasks", "apps.audit.tasks", "apps.worklist.tasks")


@app.on_after_finalize.connect
def _collect_beat_schedule(sender: Celery, **kwargs: object) -> None:
    from importlib import import_module

    for name in BEAT_MODULES:
        sender.conf.beat_schedule.update(getattr(import_module(name), "BEAT_SCHEDULE", {}))


@worker_init.connect
def _warm_up(**kwargs: object) -> None:
    """Before the pool forks: the children inherit what the apps' warm-up hooks loaded (apps.core.warmup)."""
    from apps.core.warmup import warm_up_run

    app.connection_for_write().release()  # imports the broker's transport for the tasks' sends (no socket yet)
    app.backend  # noqa: B018  (the result backend object, built at first use: "disabled" here, but built)
    logging.getLogger(__name__).info("worker warmed up in %.2f s", warm_up_run())


@worker_process_init.connect
def _connect_database(**kwargs: object) -> None:
    """Each child opens its database connection as it starts, not in its first task (which may be urgent)."""
    from django.db import connection

    try:
        connection.ensure_connection()
    except Exception:  # the database may be down: the first task connects (and retries) as usual
        logging.getLogger(__name__).warning("database not reachable at worker start", exc_info=True)
