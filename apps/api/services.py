"""RIS integration services: API keys, webhook outbox and delivery.

``webhook_event_publish`` subscribes to the case timeline (apps.worklist.events, registered in
ApiConfig.ready()): ``apps.worklist.services.case_event_add`` calls it inside the transaction that records
the event, and it writes outbox rows, so an event is announced if and only if it was committed.

Delivery order: for one (subscription, case) the oldest pending delivery is sent first and a
failed one blocks the later ones; a worker claims the head (row lock, then a send lease on
``next_attempt_at``) in a short transaction and sends it with no transaction open, so concurrent
workers wait behind the lease, never behind a network call (docs/locking.md). A receiver that is down keeps its deliveries pending (retried with exponential
backoff by the task and re-driven by the beat sweeper) until it comes back.

Targets are vetted twice (apps.api.egress): the URL when it is registered (https only, no
loopback/private/metadata literal) and the resolved addresses at each delivery. The integrator sees
only ``DELIVERY_FAILED`` or the receiver's HTTP status, never why a connection failed: that would
make the deliveries list a port scanner of the hosting network. The reason goes to the server log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.api import egress
from apps.api.models import ApiKey, ApiScope, DeliveryStatus, WebhookDelivery, WebhookSubscription
from apps.audit.services import audit_record
from apps.core.context import acting_as
from apps.core.errors import ApplicationError
from apps.traceability.models import IncidentKind
from apps.traceability.services import incident_record

logger = logging.getLogger(__name__)

KEY_PREFIX = "pds_"
DELIVER_TASK = "api.webhook_deliver"
# The one error text an integrator sees when no HTTP answer came back, whatever the cause (refused by policy,
# DNS, closed port, timeout, TLS): anything more precise would tell them which internal ports are open.
DELIVERY_FAILED = "delivery failed: no HTTP response from the receiver"

# Case events announced to integrations, by webhook event name.
WEBHOOK_EVENTS: dict[str, str] = {
    "requested": "request.created",
    "validated": "request.accepted",
    "refused": "request.refused",
    "redirected": "request.redirected",
    "cancelled": "request.cancelled",
    "images_complete": "images.complete",
    "assigned": "request.assigned",
    "queued": "request.queued",
    "escalated": "request.escalated",
    "report_signed": "report.signed",
    "addendum": "report.addendum",
}
WEBHOOK_EVENT_NAMES = sorted(set(WEBHOOK_EVENTS.values()))


# --- API keys ----------------------------------------------------------------

def api_key_digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, name: str, establishment_id: int, scope: str = ApiScope.READ,
                   created_by_id: int | None = None) -> tuple[ApiKey, str]:
    """Create a key; returns (key, clear key). The clear key is not stored and cannot be shown again."""
    if scope not in ApiScope.values:
        raise ApplicationError(f"Unknown scope {scope!r}.", code="invalid_scope")
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(name=name, establishment_id=establishment_id, scope=scope, prefix=raw[:12],
                                key_hash=api_key_digest(raw), created_by_id=created_by_id)
    audit_record(action="api_key_create", obj=key, establishment_id=establishment_id,
                 details={"scope": scope, "prefix": key.prefix})
    return key, raw


def api_key_set_hash(*, key: ApiKey) -> str:
    """Fill prefix and hash of an unsaved key (admin form); returns the clear key to show once."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key.prefix, key.key_hash = raw[:12], api_key_digest(raw)
    return raw


@transaction.atomic
def api_key_revoke(*, key_id: int) -> ApiKey:
    updated = ApiKey.objects.filter(pk=key_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key = ApiKey.objects.get(pk=key_id)
    if updated:
        WebhookSubscription.objects.filter(api_key_id=key_id).update(active=False)
        audit_record(action="api_key_revoke", obj=key, establishment_id=key.establishment_id)
    return key


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The key for a clear key, or None. Revoked keys are returned (the caller answers 401)."""
    if not raw_key or len(raw_key) > 200:
        return None
    key = ApiKey.objects.select_related("establishment").filter(key_hash=api_key_digest(raw_key)).first()
    if key is not None and key.revoked_at is None:
        now = timezone.now()
        # Coarse (one write per minute at most): the timestamp is for the admin, not for security.
        if key.last_used_at is None or now - key.last_used_at > dt.timedelta(minutes=1):
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


# --- Webhooks ------------------------------------------------------------------

def webhook_egress_policy() -> egress.EgressPolicy:
    return egress.EgressPolicy(allow_http=bool(settings.PDS_WEBHOOK_ALLOW_HTTP),
                               allow_private=bool(settings.PDS_WEBHOOK_ALLOW_PRIVATE))


@transaction.atomic
def webhook_subscription_create(*, api_key: ApiKey, url: str, events: list[str]) -> WebhookSubscription:
    unknown = sorted(set(events) - set(WEBHOOK_EVENT_NAMES))
    if unknown or not events:
        raise ApplicationError("Unknown or missing webhook events.", code="invalid_events",
                               extra={"events": [f"Choose among {', '.join(WEBHOOK_EVENT_NAMES)}."]})
    # Only what the URL itself shows (scheme, literal address, local names): the name is resolved, and its
    # addresses vetted, at each delivery, since DNS can change after registration.
    refusal = egress.url_refusal(url, webhook_egress_policy())
    if refusal:
        raise ApplicationError(f"This URL cannot receive webhooks. {refusal}", code="invalid_url",
                               extra={"url": [refusal]})
    sub = WebhookSubscription.objects.create(api_key=api_key, establishment_id=api_key.establishment_id, url=url,
                                             events=sorted(set(events)), secret="whsec_" + secrets.token_urlsafe(32))
    audit_record(action="webhook_subscribe", obj=sub, establishment_id=api_key.establishment_id,
                 details={"url": url, "events": sub.events})
    return sub


@transaction.atomic
def webhook_subscription_delete(*, subscription: WebhookSubscription) -> None:
    WebhookSubscription.objects.filter(pk=subscription.pk).update(active=False)
    audit_record(action="webhook_unsubscribe", obj=subscription, establishment_id=subscription.establishment_id)


def _iso(value: Any) -> str | None:
    # Tolerant: this runs inside other apps' transactions, whatever type a caller left on the instance.
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def webhook_payload(*, event: Any, event_type: str, case: Any) -> dict[str, Any]:
    """The JSON announced for a case event. A patient who opposes data sharing is never named."""
    withheld = bool(case.opposes_data_sharing)
    body: dict[str, Any] = {
        "event": event_type,
        "occurred_at": _iso(event.at),
        "message": event.message,
        "request": {
            "id": str(case.public_id),
            "status": case.status,
            "urgency": case.urgency,
            "modality": case.modality_id,
            "exam": case.exam,
            "accession_number": case.accession_number,
            "url": f"/api/v1/requests/{case.public_id}/",
        },
        "patient_identity_withheld": withheld,
    }
    if withheld:
        body["patient_identity_withheld_reason"] = "The patient opposes the sharing of their data."
    else:
        body["patient"] = {
            "birth_name": case.patient_birth_name, "first_names": case.patient_first_names,
            "birth_date": _iso(case.patient_birth_date),
            "sex": case.patient_sex, "ins": case.patient_ins, "local_patient_id": case.local_patient_id,
        }
    if event_type in ("report.signed", "report.addendum"):
        body["report_url"] = f"/api/v1/requests/{case.public_id}/report/"
    return body


def webhook_event_publish(*, event: Any) -> None:
    """Called for every case event in the transaction that records it; queues webhook deliveries
    for the integrations subscribed to that event kind."""
    event_type = WEBHOOK_EVENTS.get(str(event.kind))
    if event_type is None:
        return
    case = event.case
    # The requesting site's integrations, and a private provider's while the case is on its queue's line
    # (queued to it, taken by it, reported, or escalated away: the last event it hears of the case).
    audience = Q(establishment_id=case.site_id)
    if case.assigned_line_id is not None:
        audience |= Q(establishment__held_lines=case.assigned_line_id,
                      establishment__held_lines__provider_queue__active=True)
    subs = [s for s in WebhookSubscription.objects.filter(audience, active=True).distinct().order_by("pk")
            if event_type in s.events]
    if not subs:
        return
    now = timezone.now()
    payload = webhook_payload(event=event, event_type=event_type, case=case)
    for sub in subs:
        delivery = WebhookDelivery(subscription=sub, case=case, case_event=event, event_type=event_type,
                                   payload={}, created_at=now, next_attempt_at=now)
        delivery.payload = {"id": str(delivery.public_id), **payload}
        delivery.save(force_insert=True)
        webhook_deliver_enqueue(sub.pk, case.pk)


def webhook_deliver_enqueue(subscription_id: int, case_id: int, *, countdown: float = 0) -> None:
    """Ask a worker to drive this (subscription, case) queue once the transaction commits. Only a hint:
    the beat sweeper re-drives every due delivery if the broker lost it."""

    def send() -> None:
        from pds_platform.celery import app

        try:
            app.send_task(DELIVER_TASK, args=[subscription_id, case_id], countdown=countdown or None)
        except Exception:  # broker down: the sweeper will find the delivery
            import logging

            logging.getLogger(__name__).warning("could not enqueue webhook delivery", exc_info=True)

    transaction.on_commit(send)


def webhook_sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over ``<timestamp>.<body>``, hex, prefixed by the scheme version."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def webhook_signature_verify(*, secret: str, timestamp: str, body: bytes, signature: str,
                             tolerance_seconds: int = 300, now: float | None = None) -> bool:
    """What a receiver does: recompute the signature and refuse stale timestamps (replays)."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - ts) > tolerance_seconds:
        return False
    return hmac.compare_digest(webhook_sign(secret=secret, timestamp=ts, body=body), signature)


def webhook_backoff(attempts: int) -> dt.timedelta:
    base = float(settings.PDS_WEBHOOK_BACKOFF_SECONDS)
    cap = float(settings.PDS_WEBHOOK_BACKOFF_MAX_SECONDS)
    return dt.timedelta(seconds=min(cap, base * (2 ** max(0, attempts - 1))))


def _post(delivery: WebhookDelivery) -> tuple[int | None, str, str]:
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    ts = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PDS-Platform-Webhooks/1",
        "X-PDS-Event": delivery.event_type,
        "X-PDS-Delivery": str(delivery.public_id),
        "X-PDS-Timestamp": str(ts),
        "X-PDS-Signature": webhook_sign(secret=delivery.subscription.secret, timestamp=ts, body=body),
    }
    url = delivery.subscription.url
    try:
        resp = egress.post(url, body=body, headers=headers, timeout=float(settings.PDS_WEBHOOK_TIMEOUT_SECONDS),
                           policy=webhook_egress_policy(), ca_bundle=str(settings.PDS_WEBHOOK_CA_BUNDLE))
    except egress.EgressError as exc:
        kind = "refused by policy" if isinstance(exc, egress.EgressRefused) else "failed"
        logger.warning("webhook delivery %s (subscription %s) %s: %s", delivery.public_id,
                       delivery.subscription_id, kind, exc)
        return None, "", DELIVERY_FAILED
    return resp.status, resp.text[:2000], "" if 200 <= resp.status < 300 else f"HTTP {resp.status}"


def webhook_send_lease() -> dt.timedelta:
    """How long a claimed delivery is left to the worker sending it: connect and read may each take the
    timeout, plus a margin. A worker that dies meanwhile leaves the delivery due again when it ends."""
    return dt.timedelta(seconds=2 * float(settings.PDS_WEBHOOK_TIMEOUT_SECONDS) + 30)


def webhook_deliveries_drive(*, subscription_id: int, case_id: int, max_deliveries: int = 100) -> str:
    """Send the due deliveries of one (subscription, case) in order; stop at the first failure.

    Returns "done" (nothing left), "busy" (another worker holds the head), "waiting" (head not due yet, or
    being sent by another worker) or "failed" (head failed now; its next attempt is scheduled).

    No transaction is open during the HTTP request (docs/locking.md): the head is claimed in a short
    transaction (row lock, then its ``next_attempt_at`` pushed past the send lease, so any other worker sees
    it as not due and the later deliveries of the queue wait behind it), sent, and its outcome recorded in a
    second short transaction. A receiver taking its full timeout used to hold the row lock, and on SQLite
    (BEGIN IMMEDIATE) the database's only write lock, for that long.
    """
    for _ in range(max_deliveries):
        claimed = _delivery_claim(subscription_id=subscription_id, case_id=case_id)
        if isinstance(claimed, str):
            return claimed
        if claimed is None:  # abandoned: the next one is the head now
            continue
        code, text, error = _post(claimed)
        if _delivery_outcome_record(claimed, code=code, text=text, error=error) == "failed":
            return "failed"
    return "waiting"


def _delivery_claim(*, subscription_id: int, case_id: int) -> WebhookDelivery | str | None:
    """Lock the queue's head and lease it to this worker (see ``webhook_deliveries_drive``). Returns the
    claimed delivery, None when the head was abandoned, or the outcome to return."""
    with transaction.atomic(), acting_as(channel="worker"):
        head = (WebhookDelivery.objects.select_for_update(of=("self",), skip_locked=True)
                .select_related("subscription")
                .filter(subscription_id=subscription_id, case_id=case_id, status=DeliveryStatus.PENDING)
                .order_by("created_at", "pk").first())
        if head is None:
            pending = WebhookDelivery.objects.filter(subscription_id=subscription_id, case_id=case_id,
                                                     status=DeliveryStatus.PENDING).exists()
            return "busy" if pending else "done"
        # skip_locked may skip a locked head and return a later one: never send out of order.
        older = WebhookDelivery.objects.filter(
            Q(created_at__lt=head.created_at) | Q(created_at=head.created_at, pk__lt=head.pk),
            subscription_id=subscription_id, case_id=case_id, status=DeliveryStatus.PENDING)
        if older.exists():
            return "busy"
        now = timezone.now()
        if head.next_attempt_at > now:
            return "waiting"
        if not head.subscription.active:
            _delivery_abandon(head, now, "subscription deactivated")
            return None
        if now - head.created_at > dt.timedelta(hours=float(settings.PDS_WEBHOOK_GIVE_UP_HOURS)):
            _delivery_abandon(head, now, "gave up after the retention delay")
            return None
        head.next_attempt_at = now + webhook_send_lease()
        head.save(update_fields=["next_attempt_at"])
        return head


def _delivery_outcome_record(head: WebhookDelivery, *, code: int | None, text: str, error: str) -> str:
    """Record what the receiver answered. Returns "delivered", "failed", or "gone" when the delivery was
    settled meanwhile (its lease ran out and another worker sent it again: at least once)."""
    with transaction.atomic(), acting_as(channel="worker"):
        current = (WebhookDelivery.objects.select_for_update(of=("self",))
                   .filter(pk=head.pk, status=DeliveryStatus.PENDING)
                   .only("pk", "attempts", "incident_recorded").first())
        if current is None:
            return "gone"
        now = timezone.now()
        head.attempts = current.attempts + 1
        head.last_attempt_at, head.last_status_code, head.last_response = now, code, text
        head.last_error = error
        fields = ["attempts", "last_attempt_at", "last_status_code", "last_response", "last_error"]
        if not error:
            head.status, head.delivered_at = DeliveryStatus.DELIVERED, now
            head.save(update_fields=[*fields, "status", "delivered_at"])
            audit_record(action="webhook_delivered", obj=head.case,
                         patient_data=not head.payload.get("patient_identity_withheld", False),
                         establishment_id=head.subscription.establishment_id,
                         details={"event": head.event_type, "delivery": str(head.public_id),
                                  "url": head.subscription.url, "status_code": code})
            return "delivered"
        head.next_attempt_at = now + webhook_backoff(head.attempts)
        fields.append("next_attempt_at")
        if head.attempts >= int(settings.PDS_WEBHOOK_INCIDENT_AFTER) and not current.incident_recorded:
            incident_record(kind=IncidentKind.WEBHOOK_FAILED, source="api",
                            summary=f"Webhook {head.event_type} to {head.subscription.url} failing: {error}",
                            establishment_id=head.subscription.establishment_id, case_id=head.case_id,
                            details={"delivery": str(head.public_id), "attempts": head.attempts})
            head.incident_recorded = True
            fields.append("incident_recorded")
        head.save(update_fields=fields)
        return "failed"


def _delivery_abandon(delivery: WebhookDelivery, now: dt.datetime, reason: str) -> None:
    delivery.status, delivery.last_error = DeliveryStatus.ABANDONED, reason
    delivery.save(update_fields=["status", "last_error"])
    if not delivery.incident_recorded:
        incident_record(kind=IncidentKind.WEBHOOK_FAILED, source="api", severity="critical",
                        summary=f"Webhook {delivery.event_type} to {delivery.subscription.url} abandoned: {reason}",
                        establishment_id=delivery.subscription.establishment_id, case_id=delivery.case_id,
                        details={"delivery": str(delivery.public_id), "attempts": delivery.attempts})


def webhook_due_queues(*, now: dt.datetime | None = None, limit: int = 500) -> list[tuple[int, int]]:
    """(subscription, case) pairs whose oldest pending delivery is due: what the sweeper re-drives."""
    now = now or timezone.now()
    pairs = (WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
             .values_list("subscription_id", "case_id").distinct()[:limit])
    return [(int(s), int(c)) for s, c in pairs]
