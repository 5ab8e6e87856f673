"""next= goes only to a path of this site (issue 14, finding 10: open redirect after a case action)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, RequestFactory

from apps.core.redirects import safe_next
from tests.factories.worklist import make_case

EVIL = ["//evil.example", "https://evil.example", "https://evil.example/worklist/", "http://testserver.evil.example/",
        "/\\evil.example", "\\\\evil.example", "/\t/evil.example", "javascript:alert(1)", "evil.example",
        "https://testserver/worklist/"]


@pytest.mark.parametrize("target", EVIL)
def test_safe_next_refuses_other_origins_and_absolute_urls(target: str) -> None:
    request = RequestFactory().post("/", {"next": target})
    assert safe_next(request, "/fallback/") == "/fallback/"


def test_safe_next_keeps_a_path_of_this_site() -> None:
    request = RequestFactory().get("/", {"next": "/worklist/?modality=CT"})
    assert safe_next(request, "home") == "/worklist/?modality=CT"


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example"])
def test_case_action_ignores_a_foreign_next(demo: Any, target: str) -> None:
    case = make_case(demo, assign_to="radiologue")
    c = Client()
    c.force_login(demo.users["radiologue"])
    resp = c.post(f"/worklist/c/{case.public_id}/do/acknowledge", {"next": target})
    assert resp.status_code == 302 and resp["Location"] == f"/worklist/c/{case.public_id}/"
    resp = c.post(f"/worklist/c/{case.public_id}/do/release", {"next": "/worklist/"})
    assert resp["Location"] == "/worklist/"  # a path of this site is still honoured


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example"])
def test_notification_read_ignores_a_foreign_next(demo: Any, target: str) -> None:
    from apps.routing.notifiers import notification_create

    user = demo.users["radiologue"]
    note = notification_create(user=user, case=make_case(demo), kind="assigned", title="t", external=False)[0]
    c = Client()
    c.force_login(user)
    resp = c.post(f"/routing/notifications/{note.pk}/read/", {"next": target})
    assert resp.status_code == 302 and resp["Location"] == "/routing/notifications/"


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example"])
def test_login_steps_ignore_a_foreign_next(demo: Any, settings: Any, target: str) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.accounts.conftest import totp_code

    settings.PDS_DEMO_SKIP_2FA = False
    device = TOTPDevice.objects.create(user=demo.users["urgentiste"], name="phone", confirmed=True)
    c = Client()
    resp = c.post(f"/accounts/login/?next={target}", {"username": "urgentiste", "password": "pds-demo-2026",
                                                      "next": target})
    assert resp.status_code == 302 and "evil" not in resp["Location"]
    resp = c.post("/accounts/login/verify/", {"token": totp_code(device), "next": target})
    assert resp.status_code == 302 and resp["Location"] == "/"
