"""The last stage: the report reaches the requesting site (delivery, read receipts), the radiographer logs the
acquisition, the physician confirms a critical finding call.

Invariants: a receipt is written once per (case, channel, reader) -- the unique constraint is the last guard,
the case lock the first -- so reloading a page or polling the API adds nothing; the first receipt of any
site-side reader sets ``Case.delivered_at`` (compare-and-set) and writes the one "delivered" event; each
person's first reading on a channel writes a "report read" event. Radiologists and the coordinator reading a
report deliver nothing: only the requesting site's people and integrations do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, ConflictError, PermissionDeniedError
from apps.worklist.models import (
    Case,
    CaseEventKind,
    CaseStatus,
    CriticalFindingCall,
    DeliveryChannel,
    Report,
    ReportReceipt,
    ReportStatus,
)
from apps.worklist.services.common import case_event_add, lock_case

SITE_PEOPLE = ("emergency_physician", "radiographer")


@dataclass(frozen=True)
class Reader:
    """Who received the report: a person of the site, or an integration (API key, webhook subscription)."""

    key: str
    label: str
    user_id: int | None = None
    establishment_id: int | None = None  # an integration's establishment; None for a person

    @property
    def is_person(self) -> bool:
        return self.user_id is not None


def reader_for(principal: Any) -> Reader | None:
    """The reader a web user or an API principal stands for, or None when their reading delivers nothing."""
    role = getattr(principal, "role", "")
    if role == "integration" and getattr(principal, "key_id", None) is not None:
        return Reader(key=f"api-key:{principal.key_id}", label=str(principal.name),
                      establishment_id=principal.establishment_id)
    if role in SITE_PEOPLE and getattr(principal, "pk", None) is not None:
        return Reader(key=f"user:{principal.pk}", label=principal.display_name, user_id=principal.pk)
    return None


def report_delivery_record(*, case_id: int, channel: str, reader: Reader | None) -> ReportReceipt | None:
    """Record that ``reader`` received the signed report of the case through ``channel``. Returns the new
    receipt, or None when nothing was recorded (no signed report, already received there, not a site reader)."""
    if reader is None or channel not in DeliveryChannel.values:
        return None
    if ReportReceipt.objects.filter(case_id=case_id, channel=channel, reader_key=reader.key).exists():
        return None  # the usual case (a page polled, a reload): no lock, no write
    return _delivery_record(case_id=case_id, channel=channel, reader=reader)


@transaction.atomic
def _delivery_record(*, case_id: int, channel: str, reader: Reader) -> ReportReceipt | None:
    case = lock_case(case_id)
    if reader.establishment_id is not None and reader.establishment_id != case.site_id:
        return None
    if not Report.objects.filter(case=case, status=ReportStatus.SIGNED).exists():
        return None
    now = timezone.now()
    try:
        with transaction.atomic():
            receipt = ReportReceipt.objects.create(case=case, channel=channel, reader_key=reader.key,
                                                   reader_label=reader.label[:200], reader_id=reader.user_id,
                                                   at=now)
    except IntegrityError:  # recorded meanwhile by another request of the same reader
        return None
    label = DeliveryChannel(channel).label
    data = {"channel": channel, "reader": reader.label, "receipt": receipt.pk}
    if Case.objects.filter(pk=case.pk, delivered_at__isnull=True).update(delivered_at=now):
        case.delivered_at = now
        case_event_add(case=case, kind=CaseEventKind.DELIVERED, actor_id=reader.user_id, at=now, data=data,
                       message=f"Report delivered to the requesting site ({channel}): {reader.label}")
    if reader.is_person:
        case_event_add(case=case, kind=CaseEventKind.REPORT_READ, actor_id=reader.user_id, at=now, data=data,
                       message=f"Report read by {reader.label} ({channel})")
    audit_record(action="report_receipt", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"channel": channel, "channel_label": str(label), "reader": reader.key})
    return receipt


# --- Acquisition -------------------------------------------------------------------------------------------

ACQUIRABLE = (CaseStatus.AWAITING_VALIDATION, CaseStatus.INFO_REQUESTED, CaseStatus.ACCEPTED,
              CaseStatus.AWAITING_READING, CaseStatus.IN_PROGRESS, CaseStatus.REPORTED)


@transaction.atomic
def acquisition_log(*, case_id: int, user: Any, radiographer_id: int | None = None) -> Case:
    """The radiographer who performed the exam, logged by themself (or by a physician of the site naming a
    radiographer of the site). Logged once: the same radiographer again changes nothing, another is refused."""
    from apps.accounts.models import User

    if getattr(user, "role", "") not in SITE_PEOPLE:
        raise PermissionDeniedError(_("Only the requesting site's staff log the acquisition."))
    case = lock_case(case_id)
    who_id = user.pk if user.role == "radiographer" and radiographer_id in (None, user.pk) else radiographer_id
    who = (User.objects.filter(pk=who_id, role="radiographer", is_active=True, memberships__establishment=case.site_id)
           .first() if who_id else None)
    if who is None:
        raise ApplicationError(_("Choose the radiographer of this site who performed the exam."),
                               code="radiographer_required")
    if case.status not in ACQUIRABLE:
        raise ConflictError(_("The acquisition cannot be logged on this request."), code="not_acquirable")
    if case.radiographer_id == who.pk and case.acquired_at is not None:
        return case
    if case.radiographer_id is not None and case.acquired_at is not None:
        raise ConflictError(_("The acquisition is already logged by %(who)s.")
                            % {"who": case.radiographer.display_name if case.radiographer else ""},
                            code="acquisition_logged")
    now = timezone.now()
    case.radiographer, case.acquired_at = who, now
    case.save(update_fields=["radiographer", "acquired_at", "updated_at"])
    audit_record(action="acquisition_log", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"radiographer_id": who.pk})
    case_event_add(case=case, kind=CaseEventKind.ACQUIRED, actor_id=user.pk, at=now, data={"radiographer": who.pk},
                   message=f"Acquisition performed by {who.display_name}")
    return case


# --- Critical finding: the physician's confirmation -----------------------------------------------------------


@transaction.atomic
def critical_call_confirm(*, case_id: int, call_id: int, user: Any) -> CriticalFindingCall:
    """The requesting site's physician confirms they received the critical finding call (compare-and-set:
    the first confirmation stands)."""
    if getattr(user, "role", "") != "emergency_physician":
        raise PermissionDeniedError(_("Only a physician of the requesting site confirms a critical finding."))
    case = lock_case(case_id)
    now = timezone.now()
    if not CriticalFindingCall.objects.filter(pk=call_id, case=case, confirmed_at__isnull=True).update(
            confirmed_at=now, confirmed_by=user):
        if CriticalFindingCall.objects.filter(pk=call_id, case=case).exists():
            raise ConflictError(_("This call is already confirmed."), code="already_confirmed")
        raise ApplicationError(_("Unknown critical finding call."), code="unknown_call")
    call = CriticalFindingCall.objects.get(pk=call_id)
    audit_record(action="critical_confirm", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"call": call.pk})
    case_event_add(case=case, kind=CaseEventKind.CRITICAL_CONFIRMED, actor_id=user.pk, at=now,
                   data={"call": call.pk}, message=f"Critical finding call confirmed by {user.display_name}")
    return call
