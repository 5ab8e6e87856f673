"""A password alone opens nothing (issue 14, finding 1): every route of the URLconf, walked with a session that
has passed the password step only, is refused, except the login steps themselves."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.accounts.conftest import enrol, password_login, verified_login
from tests.factories.worklist import make_case
from tests.support.urlwalk import admin_object_id, url_routes

pytestmark = pytest.mark.django_db

# What a password-only session may reach, and what it gets there. Everything else must be refused.
OPEN_TO_PASSWORD_ONLY = {"accounts:login", "accounts:otp_verify", "accounts:otp_setup", "accounts:logout",
                         "healthz", "set_language"}


def walk_params(demo: Any) -> dict[str, Any]:
    """Real objects of the demo region for every path parameter of the URLconf."""
    case = make_case(demo, assign_to="radiologue", status="in_progress")
    est = demo.establishments["vierzon"]
    user = demo.users["radiologue"]
    return {
        "public_id": case.public_id, "resource_id": case.public_id, "instance_id": 1, "fmt": "pdf",
        "name": lambda route: "activity_heatmap" if route.startswith("dashboards:") else "claim",
        "user_id": user.pk, "token": "not-the-token", "pk": est.pk, "id": user.pk,
        "object_id": admin_object_id, "_0": admin_object_id, "_1": 1, "content_type_id": 1, "study_uid": "1.2.3", "series_uid": "1.2.3.4", "instance_uid": "1.2.3.4.5",
        "frames": "1",
        "app_label": "accounts", "url": "no-such-page", "path": "dicom/x.dcm",
    }


def assert_refused(resp: Any, path: str, step: str) -> None:
    if path.startswith(("/api/", "/dicomweb/")):
        assert resp.status_code == 403, (path, resp.status_code)
        assert resp["Content-Type"] == "application/problem+json", path
        assert resp.json()["type"].endswith("second_factor_required")
    else:
        assert resp.status_code == 302, (path, resp.status_code)
        assert resp["Location"].startswith(step), (path, resp["Location"])


@pytest.mark.parametrize("username", ["coordinateur", "admin.vierzon", "urgentiste", "radiologue"])
def test_password_only_session_reaches_no_page(demo: Any, strict: Any, username: str) -> None:
    enrol(demo.users[username])
    params = walk_params(demo)
    c = password_login(username)
    walked = 0
    for name, path in url_routes(params):
        if name in OPEN_TO_PASSWORD_ONLY:
            continue
        walked += 1
        assert_refused(c.get(path), path, "/accounts/login/verify/")
        assert_refused(c.post(path, {}), path, "/accounts/login/verify/")
    assert walked > 200  # the admin's routes included
    # The allowed pages: the code step works, enrolment of a second authenticator is refused.
    assert c.get("/accounts/login/verify/").status_code == 200
    assert c.get("/accounts/login/setup/")["Location"].startswith("/accounts/login/verify/")
    assert c.get("/healthz").status_code in (200, 503)
    assert c.session.get("_auth_user_id")  # still the same password-only session throughout


def test_without_an_authenticator_every_page_leads_to_enrolment(demo: Any, strict: Any) -> None:
    c = password_login("manip")
    for path in ("/", "/worklist/site/", "/dashboard/", "/admin/", "/rosters/coverage/", "/does-not-exist/"):
        resp = c.get(path)
        assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/setup/"), path
    assert c.get("/accounts/login/setup/").status_code == 200


def test_findings_of_the_issue_each_refused_then_open_once_verified(demo: Any, strict: Any) -> None:
    """The accesses the issue found with a password alone, then the same with the second factor."""
    coordinator, physician = demo.users["coordinateur"], demo.users["urgentiste"]
    dev_c, dev_p = enrol(coordinator), enrol(physician)
    case = make_case(demo)
    record = f"/traceability/cases/{case.public_id}/record"
    pages = {"coordinateur": ["/admin/", "/dashboard/", "/rosters/coverage/"],
             "urgentiste": [f"{record}.json", f"{record}.pdf", f"/worklist/c/{case.public_id}/"]}
    api = f"/api/v1/requests/{case.public_id}/"
    for username, device in (("coordinateur", dev_c), ("urgentiste", dev_p)):
        c = password_login(username)
        for path in pages[username]:
            assert c.get(path).status_code == 302, path
        resp = c.get(api)
        assert resp.status_code == 403 and b"DUPONT" not in resp.content
        assert c.post("/api/v1/requests/", {}, content_type="application/json").status_code == 403
        v = verified_login(username, device)
        for path in pages[username]:
            assert v.get(path).status_code == 200, path
        if username == "urgentiste":
            assert v.get(api).status_code == 200 and b"DUPONT" in v.get(api).content


def test_admin_login_form_does_not_log_in_with_a_password(demo: Any, strict: Any) -> None:
    enrol(demo.users["coordinateur"])
    c = Client()
    resp = c.post("/admin/login/", {"username": "coordinateur", "password": "pds-demo-2026"})
    assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in c.session
    assert c.get("/admin/").status_code == 302


def test_admin_site_itself_requires_the_second_factor(demo: Any, strict: Any, rf: Any) -> None:
    """Defence in depth behind the middleware: the admin site's own permission check."""
    from django.contrib import admin

    request = rf.get("/admin/")
    request.user = demo.users["coordinateur"]
    request.user.is_verified = lambda: False
    assert not admin.site.has_permission(request)
    request.user.is_verified = lambda: True
    assert admin.site.has_permission(request)


def test_api_key_is_a_machine_credential_unaffected_by_a_password_only_session(demo: Any, strict: Any) -> None:
    from apps.api.services import api_key_create

    _, raw = api_key_create(name="RIS", establishment_id=demo.establishments["vierzon"].pk, scope="read")
    enrol(demo.users["urgentiste"])
    c = password_login("urgentiste")
    assert c.get("/api/v1/requests/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    assert c.get("/api/v1/requests/", HTTP_X_API_KEY=raw).status_code == 200
    # The header is no way around the check on the web pages.
    assert c.get("/dashboard/", HTTP_X_API_KEY=raw).status_code == 302
    assert c.get("/worklist/site/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 302


def test_live_json_endpoints_answer_401_so_the_page_reloads(demo: Any, strict: Any) -> None:
    enrol(demo.users["radiologue"])
    c = password_login("radiologue")
    resp = c.get("/worklist/rows", HTTP_ACCEPT="application/json")
    assert resp.status_code == 401 and resp.json()["login_url"].startswith("/accounts/login/verify/")


def test_drf_permission_requires_a_verified_session(demo: Any, strict: Any, rf: Any) -> None:
    from rest_framework.authentication import SessionAuthentication
    from rest_framework.permissions import IsAuthenticated
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from apps.accounts.permissions import SessionSecondFactorVerified

    class Probe(APIView):
        authentication_classes = [SessionAuthentication]
        permission_classes = [IsAuthenticated, SessionSecondFactorVerified]

        def get(self, request: Any) -> Response:
            return Response({"ok": True})

    user = demo.users["urgentiste"]
    for verified, status in ((False, 403), (True, 200)):
        request = rf.get("/probe/")
        request.user = user
        user.is_verified = lambda v=verified: v
        assert Probe.as_view()(request).status_code == status


def test_demo_skip_keeps_working(demo: Any, settings: Any) -> None:
    """The embedded demo (PDS_DEMO_SKIP_2FA, DEBUG only) goes straight in, pages and API alike."""
    settings.PDS_DEMO_SKIP_2FA = True
    enrol(demo.users["coordinateur"])
    c = Client()
    resp = c.post("/accounts/login/", {"username": "coordinateur", "password": "pds-demo-2026"})
    assert resp["Location"] == "/"
    assert c.get("/dashboard/").status_code == 200
    assert c.get("/admin/").status_code == 200
    assert c.get("/api/v1/establishments/").status_code == 200


def test_the_skip_never_reaches_production() -> None:
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import django,os;os.environ['DJANGO_SETTINGS_MODULE']="
                          "'pds_platform.settings';django.setup();from django.conf import settings as s;"
                          "print(s.PDS_DEMO_SKIP_2FA)"],
                         env={**os.environ, "DJANGO_DEBUG": "0", "PDS_DEMO_SKIP_2FA": "1",
                              "DJANGO_SECRET_KEY": "x" * 60, "PDS_AUDIT_KEY": "k" * 40},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_system_check_refuses_the_skip_without_debug(settings: Any) -> None:
    from apps.accounts.checks import second_factor_not_skipped_in_production

    settings.PDS_DEMO_SKIP_2FA, settings.DEBUG = True, False
    assert [e.id for e in second_factor_not_skipped_in_production()] == ["accounts.E001"]
    settings.PDS_DEMO_SKIP_2FA = False
    assert second_factor_not_skipped_in_production() == []
