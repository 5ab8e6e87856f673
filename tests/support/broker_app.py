"""A Celery app with the platform's own Celery settings (so the embedded broker, late ack and prefetch are the
real ones) and one task that records what it received: the soak test of the embedded broker drives it.

Run as a worker with ``celery -A tests.support.broker_app worker``, or as a publisher with
``python -m tests.support.broker_app <name> <count>``. The record file is ``$PDS_SOAK_RECORD``.
"""

from __future__ import annotations

import os
import sys
import time

from celery import Celery

app = Celery("broker_soak")
# The settings module only reads the environment: no Django set-up is needed to take its CELERY_* values.
app.config_from_object("pds_platform.settings", namespace="CELERY")


@app.task(name="soak.record")
def record(token: str, seconds: float = 0.0) -> None:
    """Append ``token`` to the record file: one write with O_APPEND, so lines of concurrent tasks never mix."""
    if seconds:
        time.sleep(seconds)
    fd = os.open(os.environ["PDS_SOAK_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{token}\n".encode())
    finally:
        os.close(fd)


def publish(name: str, count: int, seconds: float = 0.0) -> None:
    for i in range(count):
        record.delay(f"{name}-{i}", seconds)


if __name__ == "__main__":
    publish(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
