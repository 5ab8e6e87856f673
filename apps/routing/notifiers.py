"""Pluggable notification channels: in-app (a row the live worklist shows), email (Django mail) and
SMS/pager (backend chosen by settings.PDS_SMS_BACKEND: console or file for the demo).

Notification rows are created in the routing transaction; delivery happens after
commit (never send an SMS for an assignment that rolled back). A failed
delivery of an assignment alert makes the case escalate at once (its
escalation_due_at is set to now, the beat task moves it on at its next tick).
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
        transaction.on_commit(lambda: notifications_deliver(ids))
    return rows


def _deliver_one(n: Notification) -> None:
    text = f"{n.title} {n.body}".strip()
    if n.channel == Channel.EMAIL:
        send_mail(n.title, n.body or n.title, settings.DEFAULT_FROM_EMAIL, [n.address])
    elif n.channel == Channel.SMS:
        sms_backend().send(phone=n.address, text=text[:300])


def notifications_deliver(ids: list[int]) -> None:
    """Deliver pending notifications; record the outcome; a failed assignment alert escalates the case."""
    from apps.routing.services import delivery_failed

    sent: list[int] = []
    for n in Notification.objects.filter(pk__in=ids, status=DeliveryStatus.PENDING):
        try:
            _deliver_one(n)
        except Exception as exc:  # any backend failure is recorded and counts toward escalation
            log.warning("notification %s via %s failed: %s", n.pk, n.channel, exc)
            Notification.objects.filter(pk=n.pk).update(status=DeliveryStatus.FAILED, error=str(exc)[:300])
            if n.case_id and n.kind == "assigned":
                delivery_failed(case_id=n.case_id, user_id=n.user_id, channel=n.channel, error=str(exc))
            continue
        sent.append(n.pk)
    if sent:
        Notification.objects.filter(pk__in=sent).update(status=DeliveryStatus.SENT, sent_at=timezone.now())
