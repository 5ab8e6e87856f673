"""Sessions are saved when they change and otherwise at most every PDS_SESSION_TOUCH_SECONDS (apps/accounts/
sessions.py): a viewer's hundreds of requests a minute no longer write the session row each, and the idle timeout
still ends the session (at most that many seconds earlier than a save on every request would)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts import sessions
from tests.accounts.conftest import enrol, verified_login

PAGE = "/worklist/"


@pytest.mark.parametrize(("touched", "now", "due"), [
    (None, 1000, True),          # never recorded: saved
    ("1000", 1000, True),        # not ours: saved
    (1000, 1000, False),         # just saved
    (1000, 1059, False),         # within the minute
    (1000, 1060, True),          # a minute later
    (1000, 900, True),           # the clock went back: saved rather than trusted
])
def test_touch_due(touched: object, now: int, due: bool) -> None:
    assert sessions.touch_due(touched, now, 60) is due


def _session_writes(client: Client, url: str = PAGE) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        status = client.get(url).status_code
    return status, [q["sql"] for q in queries.captured_queries
                    if "django_session" in q["sql"] and not q["sql"].lstrip().upper().startswith("SELECT")]


def _row(client: Client) -> Session:
    return Session.objects.get(session_key=client.cookies["sessionid"].value)


@pytest.mark.django_db
def test_an_unchanged_session_is_saved_once_a_minute_and_still_expires(
        demo: Any, strict: Any, monkeypatch: Any) -> None:
    strict.PDS_SESSION_TOUCH_SECONDS = 60
    client = verified_login("radiologue", enrol(demo.users["radiologue"]))
    status, writes = _session_writes(client)
    assert status == 200
    before = _row(client).expire_date
    for _ in range(3):  # within the minute: no write
        status, writes = _session_writes(client)
        assert status == 200 and writes == [], writes
    assert _row(client).expire_date == before

    # A minute later the request pushes the idle timeout back.
    later = time.time() + 61
    monkeypatch.setattr(sessions.time, "time", lambda: later)
    status, writes = _session_writes(client)
    assert status == 200 and writes, "the session was not saved after the touch interval"
    assert _row(client).expire_date >= before
    assert _row(client).get_decoded()[sessions.TOUCHED] == int(later)

    # Idle past the session's age: refused, as before (the row's expiry date is what counts).
    Session.objects.filter(session_key=client.cookies["sessionid"].value).update(
        expire_date=timezone.now() - dt.timedelta(seconds=1))
    response = client.get(PAGE)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_no_session_is_created_for_an_anonymous_visitor(demo: Any, strict: Any) -> None:
    count = Session.objects.count()
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    client.cookies["sessionid"] = "not-a-stored-session-key-000000000"
    assert client.get("/accounts/login/").status_code == 200
    assert Session.objects.count() == count


@pytest.mark.django_db
def test_logout_still_ends_the_session_at_once(demo: Any, strict: Any) -> None:
    client = verified_login("radiologue", enrol(demo.users["radiologue"]))
    key = client.cookies["sessionid"].value
    assert client.get(PAGE).status_code == 200
    client.post("/accounts/logout/")
    assert not Session.objects.filter(session_key=key).exists()
    client.cookies["sessionid"] = key
    assert client.get(PAGE).status_code == 302
