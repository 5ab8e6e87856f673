"""Least privilege (issue 14, findings 5 and 6): the permission matrix (apps.accounts.matrix) covers every route,
and what each role gets on every route of the URLconf is what the matrix says, through the real middleware,
views and API (a walk of the URLconf per principal). Then the findings one by one: the establishment
administrator's writes and nominative reads, and refused accesses that left no trace."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client
from django.urls import resolve, reverse
from rest_framework.test import APIClient
from rest_framework.views import APIView

from apps.accounts import matrix
from apps.accounts.models import User
from apps.audit.models import AuditEntry
from apps.worklist.models import Report
from tests.factories.worklist import make_case
from tests.support.urlwalk import admin_object_id, url_routes

pytestmark = pytest.mark.django_db

REQUEST_BODY = {"patient_birth_name": "MARTIN", "patient_first_names": "Jeanne", "patient_sex": "F",
                "patient_birth_date": "1948-03-02", "clinical_question": "Hématome ?", "modality": "CT",
                "exam": "Scanner cérébral", "urgency": "vital", "patient_informed": True}


def walk_params(demo: Any, case: Any) -> dict[str, Any]:
    est = demo.establishments["vierzon"]
    return {
        "public_id": case.public_id, "resource_id": case.public_id, "instance_id": 1, "fmt": "pdf",
        "name": lambda route: "activity_sites" if route.startswith("dashboards:") else "claim",
        "user_id": demo.users["radiologue"].pk, "token": "not-the-token",
        "pk": lambda route: admin_object_id(route) if route.startswith("admin:") else est.pk,
        "id": demo.users["radiologue"].pk, "object_id": admin_object_id, "_0": admin_object_id, "_1": 1,
        "content_type_id": 1, "study_uid": "1.2.3", "series_uid": "1.2.3.4", "instance_uid": "1.2.3.4.5",
        "frames": "1", "app_label": "accounts", "url": "no-such-page", "path": "agreements/x.pdf",
    }


def _is_drf(path: str) -> bool:
    cls = getattr(resolve(path).func, "cls", None)
    return isinstance(cls, type) and issubclass(cls, APIView)


def _takes_api_keys(path: str) -> bool:
    from apps.api.authentication import ApiKeyAuthentication

    cls = getattr(resolve(path).func, "cls", None)
    return _is_drf(path) and ApiKeyAuthentication in getattr(cls, "authentication_classes", ())


def requests_for(route: str, path: str) -> list[tuple[str, str, str]]:
    """(method, path, matrix action) for every action of the route."""
    func = resolve(path).func
    actions = getattr(func, "actions", None)
    if actions:  # a DRF viewset: one request per method it maps
        return [(method.upper(), path, action) for method, action in actions.items() if method != "head"]
    if route == "worklist:action":
        public_id = resolve(path).kwargs["public_id"]
        return [("POST", reverse("worklist:action", args=[public_id, name]), name)
                for name in matrix.MATRIX["worklist:action"]]
    return [("GET", path, matrix.READ), ("POST", path, matrix.WRITE)]


# --- The matrix covers the URLconf, and nothing else ------------------------------------------------------------


def test_every_route_and_action_has_an_entry_and_every_entry_a_route(demo: Any) -> None:
    from apps.worklist.views import ACTIONS

    case = make_case(demo)
    seen: set[str] = set()
    missing = []
    for _name, path in url_routes(walk_params(demo, case)):
        route = resolve(path).view_name
        entry = matrix.entry_for(route)
        if entry is None:
            missing.append(route)
            continue
        seen.add(route if route in matrix.MATRIX else route.rsplit(":", 1)[0] + ":*")
        for action in (getattr(resolve(path).func, "actions", None) or {}).values():  # a DRF viewset's actions
            assert action in entry, f"{route}: action {action!r} has no entry"
    assert not missing, f"routes without an entry in apps.accounts.matrix.MATRIX: {missing}"
    assert set(matrix.MATRIX) - seen - matrix.DEBUG_ONLY_ROUTES == set(), "entries for routes that no longer exist"
    assert set(matrix.MATRIX["worklist:action"]) == set(ACTIONS)
    for entry in matrix.MATRIX.values():
        for allowed in entry.values():
            assert allowed <= matrix.ALL_ROLES


def test_a_route_without_an_entry_is_refused_to_everyone() -> None:
    assert matrix.allowed_roles("worklist:some_new_page", matrix.READ) == frozenset()
    assert matrix.allowed_roles("api:new-thing-list", "list") == frozenset()
    assert matrix.allowed_roles("worklist:action", "a_new_action") == frozenset()


def test_roles_of_principals() -> None:
    from apps.api.authentication import Integration

    assert matrix.roles_of(None) == {matrix.ANONYMOUS}
    assert matrix.roles_of(User(username="x", role="radiologist")) == {"radiologist"}
    assert matrix.roles_of(User(username="x", role="integration")) == set()  # keys are not accounts
    assert matrix.roles_of(User(username="x", role="radiologist", is_active=False)) == set()
    assert matrix.roles_of(User(username="x", is_superuser=True)) == {matrix.SUPERUSER}
    key = Integration(key_id=1, name="k", establishment_id=1, can_write=False)
    assert matrix.roles_of(key) == {matrix.INTEGRATION}
    assert matrix.roles_of(Integration(key_id=1, name="k", establishment_id=1, can_write=True)) == {
        matrix.INTEGRATION, matrix.INTEGRATION_RW}


# --- The walk: every route, every action, every principal ---------------------------------------------------------

PRINCIPALS = ["anonymous", "coordinateur", "admin.vierzon", "urgentiste", "manip", "radiologue", "superuser",
              "key_read", "key_read_write"]


def _principal(demo: Any, who: str) -> tuple[Any, Client]:
    """(principal for the matrix, client acting as it)."""
    from apps.api.authentication import Integration
    from apps.api.services import api_key_create

    client = APIClient()
    if who == "anonymous":
        return None, client
    if who.startswith("key_"):
        scope = "read_write" if who == "key_read_write" else "read"
        key, raw = api_key_create(name=who, establishment_id=demo.establishments["vierzon"].pk, scope=scope)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return Integration(key_id=key.pk, name=key.name, establishment_id=key.establishment_id,
                           can_write=key.can_write), client
    user = (User.objects.create_superuser(username="root", password="Root-pass-2026!") if who == "superuser"
            else demo.users[who])
    client.force_login(user)
    return user, client


def _role_refusals(since: int) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(pk__gt=since, action="access_refused"))


@pytest.mark.parametrize("who", PRINCIPALS)
def test_every_route_answers_each_principal_as_the_matrix_says(demo: Any, who: str) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    case = make_case(demo, assign_to="radiologue", status="in_progress")
    # django-otp's device "config" page answers 500 for an id that does not exist: walk it with a real one.
    TOTPDevice.objects.create(user=demo.users["radiologue"], name="phone", confirmed=True)
    principal, client = _principal(demo, who)
    is_key = who.startswith("key_")
    walked = refused = 0
    for _name, path in url_routes(walk_params(demo, case)):
        route = resolve(path).view_name
        drf = _is_drf(path)
        if is_key and not _takes_api_keys(path):
            continue  # an API key is a credential of the API's own views only (not of the schema's pages)
        if route in ("accounts:logout", "admin:logout"):
            continue  # would end the session the walk goes on with
        for method, target, action in requests_for(route, path):
            allowed = matrix.is_allowed(principal, route, action)
            last = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            resp = client.generic(method, target, "{}" if drf else "",
                                  content_type="application/json" if drf else "application/octet-stream")
            walked += 1
            where = f"{who} {method} {target} ({route} / {action})"
            assert resp.status_code < 500 or route == "healthz", where  # healthz: 503 until beat has run
            audited = [e for e in _role_refusals(last) if e.details.get("reason") == "role"]
            if principal is None:
                if not allowed:
                    refused += 1
                    if drf:
                        assert resp.status_code in (401, 403), where
                    else:
                        assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/"), where
                continue
            if allowed:
                assert not audited, where
                if not route.startswith("admin:"):  # inside the admin, model permissions may still say no
                    assert resp.status_code != 403, where
            else:
                refused += 1
                assert resp.status_code == 403, where
                assert len(audited) == 1, where
                entry = audited[0]
                assert entry.details["route"] == route and entry.details["action"] == action, where
    assert walked > (30 if is_key else 250)
    assert refused > 0


# --- Finding 5: the establishment administrator is read-only and sees aggregates ----------------------------------


def test_establishment_administrator_writes_nothing_and_reads_no_identified_case(demo: Any) -> None:
    case = make_case(demo)  # a case of their own establishment (Vierzon)
    admin_user = demo.users["admin.vierzon"]
    api = APIClient()
    api.force_login(admin_user)
    created = api.post("/api/v1/requests/", REQUEST_BODY, format="json")
    assert created.status_code == 403 and created["Content-Type"] == "application/problem+json"
    assert api.post(f"/api/v1/requests/{case.public_id}/cancel/", {"reason": "x"}, format="json").status_code == 403
    case.refresh_from_db()
    assert case.status != "cancelled"
    for path in (f"/api/v1/requests/{case.public_id}/", "/api/v1/requests/", "/api/v1/studies/",
                 f"/api/v1/requests/{case.public_id}/tele-act/", f"/api/v1/fhir/ServiceRequest/{case.public_id}"):
        assert api.get(path).status_code == 403, path
    web = Client()
    web.force_login(admin_user)
    for path in (f"/worklist/c/{case.public_id}/", f"/worklist/c/{case.public_id}/viewer/",
                 f"/traceability/cases/{case.public_id}/record/", f"/traceability/cases/{case.public_id}/record.pdf",
                 "/worklist/site/", "/worklist/site/matching/", "/worklist/request/new/", "/admin/"):
        assert web.get(path).status_code == 403, path
    # What they do see: their establishment's dashboard (aggregates, CSV), the regional directory.
    assert web.get("/").url == "/dashboard/"
    assert web.get("/dashboard/").status_code == 200
    assert web.get("/dashboard/export/activity_sites.csv").status_code == 200
    assert api.get("/api/v1/establishments/").status_code == 200
    assert not AuditEntry.objects.filter(action="read", object_type="worklist.case", object_id=str(case.pk),
                                         actor_username="admin.vierzon").exists()


def test_the_menu_offers_each_role_only_what_the_matrix_allows(demo: Any) -> None:
    web = Client()
    web.force_login(demo.users["admin.vierzon"])
    html = web.get("/dashboard/").content.decode()
    assert "/worklist/site/" not in html and "/worklist/request/new/" not in html
    web.force_login(demo.users["urgentiste"])
    html = web.get("/worklist/site/").content.decode()
    # The indicators are shared with the physician (issue 18, point 11), not with the radiographer.
    assert "/worklist/request/new/" in html and "/dashboard/" in html
    web.force_login(demo.users["manip"])
    html = web.get("/worklist/site/").content.decode()
    assert "/worklist/request/new/" in html and "/dashboard/" not in html


# --- Finding 6: refused accesses are audited, without a 404 oracle --------------------------------------------------


def _refusals(**filters: Any) -> Any:
    return AuditEntry.objects.filter(action="access_refused", **filters)


def test_another_establishments_case_by_web_is_refused_audited_and_indistinguishable(demo: Any) -> None:
    case = make_case(demo)  # Vierzon's
    stranger = Client()
    stranger.force_login(demo.users["urgentiste.blois"])
    theirs = stranger.get(f"/worklist/c/{case.public_id}/")
    missing = stranger.get(f"/worklist/c/{uuid.uuid4()}/")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content
    entry = _refusals(object_type="worklist.case", object_id=str(case.pk)).get()
    assert entry.actor_username == "urgentiste.blois" and entry.channel == "web" and not entry.patient_data
    assert entry.details["reason"] == "not_visible" and entry.details["status"] == 404
    assert entry.details["object_establishment_id"] == demo.establishments["vierzon"].pk
    assert entry.details["route"] == "worklist:case"
    assert _refusals(details__reason="not_found", actor_username="urgentiste.blois").count() == 1
    # The tele-act record, the viewer's slices: the same.
    assert stranger.get(f"/traceability/cases/{case.public_id}/record.json").status_code == 404
    assert _refusals(object_id=str(case.pk), details__route="traceability:record_download").exists()


def test_another_establishments_case_by_api_key_is_refused_audited_and_indistinguishable(demo: Any) -> None:
    from apps.api.services import api_key_create

    case = make_case(demo)  # Vierzon's
    key, raw = api_key_create(name="RIS Blois", establishment_id=demo.establishments["blois"].pk, scope="read")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    for template in ("/api/v1/requests/{}/", "/api/v1/requests/{}/report/", "/api/v1/fhir/ServiceRequest/{}"):
        theirs = api.get(template.format(case.public_id))
        missing = api.get(template.format(uuid.uuid4()))
        assert theirs.status_code == missing.status_code == 404, template
        assert theirs.json() == missing.json(), template
    entries = list(_refusals(object_type="worklist.case", object_id=str(case.pk)))
    assert len(entries) == 3
    for entry in entries:
        assert entry.actor_username.startswith(f"api-key:{key.pk}:") and entry.channel == "api"
        assert entry.details["reason"] == "not_visible"
        assert entry.details["object_establishment_id"] == demo.establishments["vierzon"].pk
    assert _refusals(details__reason="not_found", channel="api").count() == 3


def test_emergency_physician_trying_to_sign_is_refused_and_audited(demo: Any) -> None:
    case = make_case(demo, assign_to="radiologue", status="in_progress")
    physician = Client()
    physician.force_login(demo.users["urgentiste"])
    resp = physician.post(f"/worklist/c/{case.public_id}/do/sign", {"conclusion": "Normal."})
    assert resp.status_code == 403
    assert not Report.objects.filter(case=case).exists()
    entry = _refusals(details__route="worklist:action").get()
    assert entry.actor_username == "urgentiste" and entry.details["action"] == "sign"
    assert entry.details["reason"] == "role" and entry.details["status"] == 403


def test_a_service_rule_refusing_the_act_is_audited(demo: Any) -> None:
    """A radiologist signing a case they have not claimed: allowed by role, refused by the rule."""
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    radiologist = Client()
    radiologist.force_login(demo.users["radiologue"])
    resp = radiologist.post(f"/worklist/c/{case.public_id}/do/sign", HTTP_ACCEPT="application/json")
    assert resp.status_code == 403
    entry = _refusals(object_id=str(case.pk)).get()
    assert entry.details["reason"] == "rule" and entry.details["action"] == "sign"

