"""Shared by the service modules: the case timeline writer (the outbox), the routing hand-off, the case lock."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.errors import NotFoundError, PermissionDeniedError
from apps.studies.services import ROUTING_SEND_FAIL_FAST, ROUTING_SEND_TIMEOUT
from apps.worklist.events import case_event_announce, case_routing_request
from apps.worklist.models import Case, CaseEvent, CaseEventKind

log = logging.getLogger(__name__)


def task_send_on_commit(task: str, arg: int) -> None:
    """Send a worker's hint once the transaction commits, on a connection that gives up at once (this may run in
    the gateway's reconciler: a broker down must not hold it up). The row is the truth; whoever needs the work
    done again re-drives it (beat, or the reader's own request)."""
    def send() -> None:
        from pds_platform.celery import app

        try:
            with app.connection_for_write(transport_options=ROUTING_SEND_FAIL_FAST,
                                          connect_timeout=ROUTING_SEND_TIMEOUT) as conn:
                app.send_task(task, args=[arg], retry=False, connection=conn)
        except Exception:  # broker down
            log.warning("%s for %s not sent", task, arg, exc_info=True)

    transaction.on_commit(send)


def case_event_add(*, case: Case, kind: str, message: str, actor_id: int | None = None,
                   data: dict[str, Any] | None = None, at: dt.datetime | None = None) -> CaseEvent:
    """Record a timeline event and announce it to the subscribers (apps.worklist.events) in this
    transaction: the timeline is the outbox of the integrations."""
    event = CaseEvent.objects.create(case=case, at=at or timezone.now(), kind=kind, actor_id=actor_id,
                                     message=message[:300], data=data or {})
    case_event_announce(event)
    return event


def lock_case(case_id: int) -> Case:
    try:
        # The case row only (docs/locking.md): the site and modality are read, never locked.
        return Case.objects.select_for_update(of=("self",)).select_related("site", "modality").get(pk=case_id)
    except Case.DoesNotExist as exc:
        raise NotFoundError(_("This request does not exist.")) from exc


def require_radiologist(user: Any) -> None:
    if getattr(user, "role", "") != "radiologist":
        raise PermissionDeniedError(_("Only a radiologist can do this."))


def enqueue_routing(case_id: int) -> None:
    """Hand the case to routing once the transaction commits (routing registered how: apps.worklist.events)."""
    case_routing_request(case_id)


def case_acquired_before_validation_record(*, case: Case, reading_held: bool, no_request: bool = False,
                                           actor_id: int | None = None) -> None:
    """Record on the case that its images came before its indication was validated (apps.worklist.justification):
    the flag, which the dashboard counts, and the timeline event. Once per case."""
    if case.acquired_before_validation:
        return
    Case.objects.filter(pk=case.pk).update(acquired_before_validation=True)
    case.acquired_before_validation = True
    case_event_add(case=case, kind=CaseEventKind.ACQUIRED_BEFORE_VALIDATION, actor_id=actor_id, message=(
        "Images arrived without a request (justification after acquisition)" if no_request
        else "Images arrived before the indication was validated (justification after acquisition): "
             "reading waits for the validation" if reading_held
        else "Images arrived before the indication was validated (justification after acquisition): "
             "reading not held for an emergency"),
        data={"urgency": case.urgency, "reading_held": reading_held, "no_request": no_request})
