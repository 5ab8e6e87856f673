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
