"""Delivery of notifications (the worker's side): send one, record a failed alert (the case escalates at
once), re-send those left pending, mark one read. Re-exported by ``apps.routing.services``."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.routing.models import DeliveryStatus as NotificationStatus
from apps.routing.models import Notification
from apps.routing.notifiers import notification_send, notifications_deliver_enqueue
from apps.traceability.models import IncidentKind
from apps.traceability.services import incident_record
from apps.worklist.models import AssignmentState, Case, CaseEventKind
from apps.worklist.services import case_event_add

log = logging.getLogger(__name__)


@transaction.atomic
def delivery_failed(*, case_id: int, user_id: int, channel: str, error: str) -> None:
    """A failed alert counts toward escalation: the case escalates at the next beat tick."""
    updated = Case.objects.filter(pk=case_id, assigned_to_id=user_id, assignment_state=AssignmentState.OFFERED) \
        .update(escalation_due_at=timezone.now())
    case = Case.objects.filter(pk=case_id).first()
    if case is None:
        return
    incident_record(kind=IncidentKind.NOTIFICATION_FAILED, summary=f"{channel} alert for case #{case_id} failed: "
                    f"{error}"[:300], source="routing", establishment_id=case.site_id, case_id=case_id,
                    details={"channel": channel, "user_id": user_id, "escalate_now": bool(updated)})
    if updated:
        case_event_add(case=case, kind=CaseEventKind.INCIDENT,
                       message=f"{channel} alert could not be delivered: escalating without waiting")


def notification_deliver(*, notification_id: int) -> str:
    """Deliver one pending email or SMS (the worker's task): "sent", "failed" or "skipped" (no longer pending,
    so a re-run or a duplicate message does nothing). No transaction is open during the send. At least once: a
    worker killed between the send and the mark sends it again when the message is redelivered.

    A failed assignment alert makes the case escalate at once (delivery_failed)."""
    n = Notification.objects.filter(pk=notification_id, status=NotificationStatus.PENDING).first()
    if n is None:
        return "skipped"
    try:
        notification_send(n)
    except Exception as exc:  # any backend failure is recorded and counts toward escalation
        log.warning("notification %s via %s failed: %s", n.pk, n.channel, exc)
        if not Notification.objects.filter(pk=n.pk, status=NotificationStatus.PENDING).update(
                status=NotificationStatus.FAILED, error=str(exc)[:300]):
            return "skipped"
        if n.case_id and n.kind == "assigned":
            delivery_failed(case_id=n.case_id, user_id=n.user_id, channel=n.channel, error=str(exc))
        return "failed"
    Notification.objects.filter(pk=n.pk, status=NotificationStatus.PENDING).update(
        status=NotificationStatus.SENT, sent_at=timezone.now())
    return "sent"


def notifications_pending_redrive(*, older_than: dt.timedelta = dt.timedelta(seconds=60), limit: int = 500) -> int:
    """Send again the delivery message of notifications still pending after ``older_than`` (the broker was down
    when their transaction committed, or the message was lost). Returns how many."""
    ids = list(Notification.objects.filter(status=NotificationStatus.PENDING,
                                           created_at__lt=timezone.now() - older_than)
               .order_by("created_at").values_list("pk", flat=True)[:limit])
    notifications_deliver_enqueue(ids)
    return len(ids)


@transaction.atomic
def notification_mark_read(*, notification_id: int, user: Any) -> None:
    Notification.objects.filter(pk=notification_id, user_id=user.pk, read_at__isnull=True).update(
        read_at=timezone.now())
