"""The routing hand-off: the task that routes a case, and how a case is queued for it once a transaction commits."""

from __future__ import annotations

import logging

from django.db import transaction

from pds_platform.celery import app

log = logging.getLogger(__name__)

ROUTE_TASK = "routing.route_case"
REOFFER_TASK = "routing.reoffer_waiting"


def enqueue_routing(case_id: int) -> None:
    """Send the case to the routing task once the transaction commits. The message is only a hint: the routing
    reconciler finds cases left unassigned if the broker was down."""
    def send() -> None:
        try:
            app.send_task(ROUTE_TASK, args=[case_id])
        except Exception:  # broker down: the periodic reconciler will pick the case up
            log.warning("could not enqueue routing for case %s", case_id, exc_info=True)

    transaction.on_commit(send)


def enqueue_reoffer(region_id: int) -> None:
    """Ask the worker to re-offer the region's cases waiting on the coordinator once the transaction commits
    (a radiologist has just acknowledged a case). A hint only: the reconciler's sweep does the same."""
    def send() -> None:
        try:
            app.send_task(REOFFER_TASK, args=[region_id])
        except Exception:  # broker down: the reconciler's sweep re-offers them
            log.warning("could not enqueue the re-offer of region %s", region_id, exc_info=True)

    transaction.on_commit(send)
