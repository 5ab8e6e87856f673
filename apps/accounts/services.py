"""Second-factor devices: enrolment, re-enrolment and removal, each an audited security event.

Invariants:
- a user who has a confirmed authenticator enrols another only from a session verified with the second factor
  (the view checks; :func:`otp_enrolment_confirm` records which case it was);
- confirming a new authenticator from a verified session *replaces* the previous ones (a new phone): the old
  devices are removed, each removal audited, so a lost or copied secret stops working at once;
- every removal (re-enrolment, admin) goes through :func:`otp_device_remove`.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.audit.services import audit_record


def _device_ref(device: Any) -> dict[str, Any]:
    return {"device": f"{device._meta.app_label}.{device._meta.model_name}:{device.pk}", "name": device.name}


def otp_enrolment_device(*, user: Any) -> TOTPDevice:
    """The unconfirmed authenticator being enrolled (its secret is shown until a first code confirms it)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
    return device


@transaction.atomic
def otp_enrolment_confirm(*, user: Any, device: TOTPDevice) -> list[int]:
    """Confirm ``device`` (its first code was right); returns the ids of the authenticators it replaced."""
    previous = list(TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).exclude(pk=device.pk))
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    replaced = [d.pk for d in previous]
    for old in previous:
        otp_device_remove(device=old, via="re-enrolment")
    audit_record(action="otp_reenrol" if previous else "otp_enrol", obj=user,
                 details={**_device_ref(device), "replaced": replaced})
    return replaced


def otp_enrolment_refused(*, user: Any) -> None:
    """A password-only session asked to enrol a new authenticator although one is confirmed: the pattern of a
    stolen password trying to get past the second factor."""
    audit_record(action="otp_enrol_refused", obj=user, details={"reason": "confirmed device, session not verified"})


@transaction.atomic
def otp_device_remove(*, device: Any, via: str) -> None:
    audit_record(action="otp_device_remove", obj=device.user, details={**_device_ref(device), "via": via})
    device.delete()


def otp_device_saved_by_admin(*, device: Any, created: bool, fields: list[str]) -> None:
    audit_record(action="otp_device_add" if created else "otp_device_change", obj=device.user,
                 details={**_device_ref(device), "fields": fields, "via": "admin"})
