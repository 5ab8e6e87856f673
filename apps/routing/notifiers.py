"""Pluggable notification channels: in-app (a row the live worklist shows), email (Django mail) and
SMS/pager (backend chosen by settings.PDS_SMS_BACKEND: console or file for the demo).

Notification rows are created in the routing transaction; once it commits, one Celery message per
email or SMS row asks a worker to deliver it (task ``routing.deliver_notification``, late ack, retried with
backoff, a no-op for a row no longer pending), so no web request waits on a mail or SMS server, and an SMS is
never sent for an assignment that rolled back. The beat sweeper re-sends the message of a row left pending
(broker down at commit). A failed delivery of an assignment alert makes the case escalate at once
(apps.routing.services.notification_deliver).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from apps.routing.models import Channel, DeliveryStatus, Notification
from apps.routing.notification_texts import notification_text
from pds_platform.celery import app

log = logging.getLogger(__name__)


class SmsBackend(Protocol):
    def send(self, *, phone: str, text: str) -> None: ...


class ConsoleSmsBackend:
    """Writes each SMS to standard output (demo)."""

    def send(self, *, phone: str, text: str) -> None:
        sys.stdout.write(f"[SMS to {phone}] {text}\n")
        sys.stdout.flush()


class FileSmsBackend:
    """Appends each SMS as one line to settings.PDS_SMS_FILE (demo and tests); raises when it cannot write."""

    def send(self, *, phone: str, text: str) -> None:
        path = Path(settings.PDS_SMS_FILE)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"{timezone.now().isoformat()}\t{phone}\t{text}\n")


def sms_backend() -> SmsBackend:
    return import_string(settings.PDS_SMS_BACKEND)()  # type: ignore[no-any-return]


def notification_create(*, user: Any, case: Any, kind: str, title: str, body: str = "",
                        external: bool = True) -> list[Notification]:
    """Record the notifications of one alert (in-app always; email and SMS when the user has an address and
    ``external``) and deliver them once the transaction commits."""
    now = timezone.now()
    rows = [Notification(user=user, case=case, channel=Channel.IN_APP, kind=kind, title=title[:200], body=body,
                         status=DeliveryStatus.SENT, created_at=now, sent_at=now)]
    if external and user.email:
        rows.append(Notification(user=user, case=case, channel=Channel.EMAIL, kind=kind, title=title[:200],
                                 body=body, address=user.email, created_at=now))
    if external and user.phone:
        rows.append(Notification(user=user, case=case, channel=Channel.SMS, kind=kind, title=title[:200],
                                 body=body, address=user.phone, created_at=now))
    Notification.objects.bulk_create(rows)
    ids = [n.pk for n in rows if n.status == DeliveryStatus.PENDING]
    if ids:
        transaction.on_commit(lambda: notifications_deliver_enqueue(ids))
    return rows


DELIVER_TASK = "routing.deliver_notification"


def notifications_deliver_enqueue(ids: list[int]) -> None:
    """Ask a worker to deliver each notification (called after commit). Only a hint: the beat sweeper re-sends
    the message of a notification still pending (apps.routing.services.notifications_pending_redrive)."""
    for notification_id in ids:
        try:
            app.send_task(DELIVER_TASK, args=[notification_id])
        except Exception:  # broker down: the sweeper will find the pending row
            log.warning("could not enqueue delivery of notification %s", notification_id, exc_info=True)


def notification_send(n: Notification) -> None:
    """Send one email or SMS through its backend; raises what the backend raises."""
    title, body = notification_text(n.title), notification_text(n.body)
    text = f"{title} {body}".strip()
    if n.channel == Channel.EMAIL:
        send_mail(title, body or title, settings.DEFAULT_FROM_EMAIL, [n.address])
    elif n.channel == Channel.SMS:
        sms_backend().send(phone=n.address, text=text[:300])
