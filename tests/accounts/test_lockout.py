"""Lockout per username and address, throttle per address (issue 14, finding 10: anyone could lock the on-call
radiologist out for 15 minutes by failing five logins on her username)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.accounts.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _login(ip: str, username: str, password: str = PASSWORD) -> tuple[Client, Any]:
    c = Client(REMOTE_ADDR=ip)
    return c, c.post("/accounts/login/", {"username": username, "password": password})


def test_failures_from_one_address_do_not_lock_the_user_out_elsewhere(demo: Any, settings: Any) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login("203.0.113.7", "radiologue", "wrong-password")
    attacker, resp = _login("203.0.113.7", "radiologue")
    assert resp.status_code == 429 and "_auth_user_id" not in attacker.session  # locked from there
    assert b"Account locked" in resp.content
    radiologist, resp = _login("198.51.100.20", "radiologue")
    assert resp.status_code == 302 and radiologist.session["_auth_user_id"] == str(demo.users["radiologue"].pk)


def test_an_address_failing_across_usernames_is_throttled(demo: Any, settings: Any) -> None:
    settings.PDS_LOGIN_IP_FAILURE_LIMIT = 8
    usernames = ["radiologue", "urgentiste", "manip", "coordinateur"]
    for i in range(8):  # 2 failures per username: far below the per-username lockout
        _, resp = _login("203.0.113.9", usernames[i % 4], "wrong-password")
        assert resp.status_code == 200
    c, resp = _login("203.0.113.9", "radio.durand1")  # right password, untouched username: still refused
    assert resp.status_code == 429 and "_auth_user_id" not in c.session
    assert int(resp["Retry-After"]) == int(settings.AXES_COOLOFF_TIME * 3600)
    assert b"Too many failed logins" in resp.content
    # Other addresses (the hospital's own workstations) are not affected.
    c, resp = _login("198.51.100.21", "radio.durand1")
    assert resp.status_code == 302 and "_auth_user_id" in c.session


def test_throttle_counts_only_failures_within_the_cooloff(demo: Any, settings: Any) -> None:
    import datetime as dt

    from axes.models import AccessAttempt
    from django.utils import timezone

    settings.PDS_LOGIN_IP_FAILURE_LIMIT = 3
    for _ in range(3):
        _login("203.0.113.10", "nobody", "wrong-password")
    assert _login("203.0.113.10", "radiologue")[1].status_code == 429
    AccessAttempt.objects.filter(ip_address="203.0.113.10").update(
        attempt_time=timezone.now() - dt.timedelta(hours=settings.AXES_COOLOFF_TIME, minutes=1))
    assert _login("203.0.113.10", "radiologue")[1].status_code == 302
