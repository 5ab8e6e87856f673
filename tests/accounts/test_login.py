from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

PASSWORD = "pds-demo-2026"
pytestmark = pytest.mark.django_db


@pytest.fixture
def strict(settings: Any) -> Any:
    settings.PDS_DEMO_SKIP_2FA = False
    return settings


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


def _unthrottle(device: TOTPDevice) -> None:
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.save()


def test_professional_enrols_then_needs_the_totp_code(demo: Any, strict: Any) -> None:
    c = Client()
    resp = c.post("/accounts/login/", {"username": "urgentiste", "password": PASSWORD})
    assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/setup/")
    # Logged in with the password only: clinical pages send the user to the second factor.
    assert c.get("/worklist/site/")["Location"].startswith("/accounts/login/setup/")
    setup = c.get("/accounts/login/setup/")
    assert b"<svg" in setup.content
    device = TOTPDevice.objects.get(user=demo.users["urgentiste"])
    assert c.post("/accounts/login/setup/", {"token": "000000" if _code(device) != "000000" else "111111"}
                  ).status_code == 200
    _unthrottle(device)  # a wrong code throttles the device (django-otp); the test does not wait it out
    c.post("/accounts/login/setup/", {"token": _code(device)})
    device.refresh_from_db()
    assert device.confirmed
    assert c.get("/worklist/site/").status_code == 200

    # Next login: password then code.
    c2 = Client()
    resp = c2.post("/accounts/login/", {"username": "urgentiste", "password": PASSWORD})
    assert resp["Location"].startswith("/accounts/login/verify/")
    assert c2.get("/worklist/site/")["Location"].startswith("/accounts/login/verify/")
    bad = c2.post("/accounts/login/verify/", {"token": "12345x"})
    assert bad.status_code == 200 and bad.context["form"].errors
    _unthrottle(device)
    device.last_t = -1  # the enrolment code may be in the same 30-second step: allow its reuse here
    device.save()
    ok = c2.post("/accounts/login/verify/", {"token": _code(device), "next": "/worklist/site/"})
    assert ok.status_code == 302 and ok["Location"] == "/worklist/site/"
    assert c2.get("/worklist/site/").status_code == 200


def test_lockout_after_repeated_failures(demo: Any, settings: Any) -> None:
    c = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        c.post("/accounts/login/", {"username": "radiologue", "password": "wrong-password"})
    resp = c.post("/accounts/login/", {"username": "radiologue", "password": PASSWORD})
    assert resp.status_code in (403, 429) or "_auth_user_id" not in c.session
    assert "_auth_user_id" not in c.session


def test_demo_setting_skips_the_second_factor_only_in_debug(demo: Any, settings: Any) -> None:
    settings.PDS_DEMO_SKIP_2FA = True
    c = Client()
    resp = c.post("/accounts/login/", {"username": "radiologue", "password": PASSWORD})
    assert resp["Location"] == "/"
    assert c.get("/worklist/").status_code == 200


def test_anonymous_is_sent_to_login(db: Any) -> None:
    resp = Client().get("/worklist/")
    assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/")
