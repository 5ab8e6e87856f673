"""Login personas for the second-factor tests: the real two-step login, with the demo's skip switched off."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

PASSWORD = "pds-demo-2026"


def totp_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


@pytest.fixture
def strict(settings: Any) -> Any:
    """Production behaviour: the second factor is required (the test environment skips it like the demo)."""
    settings.PDS_DEMO_SKIP_2FA = False
    return settings


def enrol(user: Any) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def password_login(username: str, *, ip: str = "127.0.0.1") -> Client:
    """A session that has passed the password step only."""
    c = Client(REMOTE_ADDR=ip)
    resp = c.post("/accounts/login/", {"username": username, "password": PASSWORD})
    assert resp.status_code == 302 and "_auth_user_id" in c.session, resp
    return c


def verified_login(username: str, device: TOTPDevice) -> Client:
    c = password_login(username)
    resp = c.post("/accounts/login/verify/", {"token": totp_code(device)})
    assert resp.status_code == 302 and resp["Location"] == "/", resp
    return c
