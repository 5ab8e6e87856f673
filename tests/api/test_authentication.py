from __future__ import annotations

from typing import Any

from django.test import override_settings

from apps.api.services import api_key_revoke
from apps.audit.models import AuditEntry
from tests.api.conftest import REQUEST_BODY, request_create


def test_no_key_is_401_problem(world: Any) -> None:
    resp = world.client().get("/api/v1/requests/")
    assert resp.status_code == 401
    assert resp["Content-Type"] == "application/problem+json"
    assert resp["WWW-Authenticate"].startswith("Bearer")
    assert resp.json()["status"] == 401


def test_unknown_key_is_401(world: Any) -> None:
    c = world.client()
    c.credentials(HTTP_AUTHORIZATION="Bearer pds_not-a-real-key")
    assert c.get("/api/v1/requests/").status_code == 401
    entry = AuditEntry.objects.filter(action="login_failed", channel="api").latest("id")
    assert entry.details["reason"] == "unknown key" and entry.details["path"] == "/api/v1/requests/"
    assert "not-a-real-key" not in str(entry.details) + entry.actor_username  # never what was sent


def test_bearer_and_x_api_key_headers(world: Any) -> None:
    assert world.client("a_ro").get("/api/v1/requests/").status_code == 200
    assert world.client("a_ro", header="x-api-key").get("/api/v1/requests/").status_code == 200


def test_key_stored_hashed_and_shown_once(world: Any) -> None:
    key, raw = world.keys["a_rw"]
    key.refresh_from_db()
    assert raw not in (key.key_hash, key.prefix) and raw.startswith(key.prefix)
    assert len(key.key_hash) == 64


def test_revoked_key_is_401(world: Any) -> None:
    key, _ = world.keys["a_rw"]
    api_key_revoke(key_id=key.pk)
    resp = world.client("a_rw").get("/api/v1/requests/")
    assert resp.status_code == 401
    assert "revoked" in resp.json()["detail"]
    entry = AuditEntry.objects.filter(action="login_failed", channel="api").latest("id")
    assert entry.details["reason"] == "revoked key" and entry.object_id == str(key.pk)
    assert entry.establishment_id == key.establishment_id


def test_read_only_key_cannot_write(world: Any) -> None:
    resp = world.client("a_ro").post("/api/v1/requests/", REQUEST_BODY, format="json")
    assert resp.status_code == 403
    assert resp["Content-Type"] == "application/problem+json"
    created = request_create(world)
    assert world.client("a_ro").post(f"/api/v1/requests/{created['id']}/cancel/", {}, format="json").status_code == 403


def test_session_auth_for_web_users(world: Any) -> None:
    c = world.client()
    c.force_login(world.users["physician"])
    resp = c.post("/api/v1/requests/", REQUEST_BODY, format="json")
    assert resp.status_code == 201
    assert resp.json()["site"] == world.site_a.pk
    assert c.get("/api/v1/requests/").json()["count"] == 1


def test_throttled_per_key(world: Any) -> None:
    from django.core.cache import caches

    for alias in ("default", "api_throttle"):
        try:
            caches[alias].clear()
        except Exception:  # no such cache configured
            pass
    with override_settings(PDS_API_THROTTLE_RATE="3/min"):
        codes = [world.client("a_ro").get("/api/v1/establishments/").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        # Another key has its own budget.
        assert world.client("b_rw").get("/api/v1/establishments/").status_code == 200
    for alias in ("default", "api_throttle"):
        try:
            caches[alias].clear()
        except Exception:
            pass


def test_reads_are_audited_with_the_key_as_actor(world: Any) -> None:
    created = request_create(world)
    world.client("a_ro").get(f"/api/v1/requests/{created['id']}/")
    entry = AuditEntry.objects.filter(action="read", object_type="worklist.case").latest("id")
    assert entry.channel == "api"
    assert entry.patient_data is True
    assert entry.actor_username.startswith("api-key:") and "RIS Alpha reader" in entry.actor_username
    assert entry.actor_role == "integration"
    assert entry.establishment_id == world.site_a.pk
