"""Enrolment of an authenticator (issue 14, finding 2): with a confirmed device, a password alone cannot enrol
another; from a verified session a new one replaces the old; enrolment, refusal and removal are audited."""

from __future__ import annotations

from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.audit.models import AuditEntry
from tests.accounts.conftest import enrol, password_login, totp_code, verified_login

pytestmark = pytest.mark.django_db


def _actions(user: Any) -> list[str]:
    return list(AuditEntry.objects.filter(object_type="accounts.user", object_id=str(user.pk))
                .order_by("id").values_list("action", flat=True))


def test_password_alone_cannot_enrol_a_new_authenticator(demo: Any, strict: Any) -> None:
    user = demo.users["radiologue"]
    enrol(user)
    c = password_login("radiologue")
    resp = c.get("/accounts/login/setup/")
    assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/verify/")
    resp = c.post("/accounts/login/setup/", {"token": "123456"})
    assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/verify/")
    # No secret was handed out: no new device, and the session is still unverified.
    assert TOTPDevice.objects.filter(user=user).count() == 1
    assert c.get("/worklist/")["Location"].startswith("/accounts/login/verify/")
    assert _actions(user).count("otp_enrol_refused") == 2


def test_verified_session_reenrols_and_the_old_authenticator_stops_working(demo: Any, strict: Any) -> None:
    user = demo.users["radiologue"]
    old = enrol(user)
    c = verified_login("radiologue", old)
    TOTPDevice.objects.filter(pk=old.pk).update(last_t=-1)  # let the same 30-second code verify a second session
    other_browser = verified_login("radiologue", old)
    page = c.get("/accounts/login/setup/")
    assert page.status_code == 200 and page.context["reenrol"]
    new = TOTPDevice.objects.get(user=user, confirmed=False)
    resp = c.post("/accounts/login/setup/", {"token": totp_code(new)})
    assert resp.status_code == 302
    assert list(TOTPDevice.objects.filter(user=user).values_list("pk", "confirmed")) == [(new.pk, True)]
    assert c.get("/worklist/").status_code == 200  # still verified, now by the new device
    actions = _actions(user)
    assert "otp_device_remove" in actions and "otp_reenrol" in actions
    entry = AuditEntry.objects.get(action="otp_reenrol", object_id=str(user.pk))
    assert entry.details["replaced"] == [old.pk] and entry.actor_username == "radiologue"
    # Another browser, verified with the old device, is sent back to the code step.
    assert other_browser.get("/worklist/")["Location"].startswith("/accounts/login/verify/")


def test_first_enrolment_is_audited(demo: Any, strict: Any) -> None:
    user = demo.users["manip"]
    c = password_login("manip")
    c.get("/accounts/login/setup/")
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    c.post("/accounts/login/setup/", {"token": totp_code(device)})
    device.refresh_from_db()
    assert device.confirmed and "otp_enrol" in _actions(user)


def test_device_admin_is_superuser_only_and_removal_is_audited(demo: Any, strict: Any) -> None:
    from apps.accounts.models import User

    victim = demo.users["radiologue"]
    device = enrol(victim)
    coordinator = demo.users["coordinateur"]
    c = verified_login("coordinateur", enrol(coordinator))
    assert c.get("/admin/otp_totp/totpdevice/").status_code == 403
    assert c.get(f"/admin/otp_totp/totpdevice/{device.pk}/config/").status_code in (302, 403, 404)
    assert c.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"}).status_code == 403
    assert TOTPDevice.objects.filter(pk=device.pk).exists()

    User.objects.create_superuser("root", "root@example.org", "pds-demo-2026")
    root = verified_login("root", enrol(User.objects.get(username="root")))
    resp = root.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert resp.status_code == 302 and not TOTPDevice.objects.filter(pk=device.pk).exists()
    entry = AuditEntry.objects.get(action="otp_device_remove", object_id=str(victim.pk))
    assert entry.actor_username == "root" and entry.details["via"] == "admin"


def test_even_a_superuser_never_sees_another_persons_totp_secret(demo: Any, strict: Any) -> None:
    """The device admin's key, config and QR code pages would let an administrator clone a radiologist's second
    factor; they answer 403, for an existing device and for a missing one (a 500 before)."""
    from apps.accounts.models import User

    device = enrol(demo.users["radiologue"])
    User.objects.create_superuser("root", "root@example.org", "pds-demo-2026")
    root = verified_login("root", enrol(User.objects.get(username="root")))
    for pk in (device.pk, 999999):
        for page in ("config", "qrcode"):
            assert root.get(f"/admin/otp_totp/totpdevice/{pk}/{page}/").status_code == 403
    change = root.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")
    assert change.status_code == 200 and device.key not in change.content.decode()
