from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from apps.api.models import ApiKey, WebhookDelivery
from apps.api.services import api_key_create, api_key_digest
from tests.api.conftest import request_create

PARIS = ZoneInfo("Europe/Paris")


def test_schema_and_interactive_docs_without_cdn(world: Any) -> None:
    c = world.client()
    schema = c.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/requests/" in paths and "/api/v1/fhir/DiagnosticReport/{resource_id}" in paths
    for page in ("/api/docs/", "/api/redoc/"):
        html = c.get(page).content.decode()
        # Every URL the page loads or links (not the CSP nonces, random text that may spell "cdn").
        urls = re.findall(r'(?:src|href|url)\s*[=:]\s*["\']([^"\']+)["\']', html, flags=re.IGNORECASE)
        assert urls, page
        assert not [u for u in urls if "cdn" in u.lower() or "unpkg" in u.lower() or u.startswith(("http:", "https:", "//"))], page
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
        assert assets, page
        from django.contrib.staticfiles import finders

        for asset in assets:
            assert finders.find(asset.removeprefix("/static/")), asset


def test_admin_shows_a_new_key_once_and_stores_its_digest(world: Any, admin_client: Any) -> None:
    resp = admin_client.post("/admin/api/apikey/add/", {"name": "RIS Gamma", "establishment": world.site_a.pk,
                                                        "scope": "read"}, follow=True)
    assert resp.status_code == 200
    text = resp.content.decode()
    raw = re.search(r"(pds_[A-Za-z0-9_\-]{20,})", text).group(1)
    key = ApiKey.objects.get(name="RIS Gamma")
    assert key.key_hash == api_key_digest(raw) and raw not in key.key_hash
    again = admin_client.get(f"/admin/api/apikey/{key.pk}/change/").content.decode()
    assert raw not in again
    c = world.client()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert c.get("/api/v1/requests/").status_code == 200
    admin_client.post("/admin/api/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert c.get("/api/v1/requests/").status_code == 401


def test_sweeper_redrives_due_deliveries(world: Any, monkeypatch: Any) -> None:
    from apps.api import tasks

    # Not delivered here (delay is replaced): any URL the policy accepts will do.
    world.client("a_rw").post("/api/v1/webhooks/", {"url": "https://ris.example.org/pds", "events": ["request.created"]},
                              format="json")
    request_create(world)
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(tasks.webhook_deliver, "delay", lambda s, c: sent.append((s, c)))
    assert tasks.webhook_sweep() == 1
    d = WebhookDelivery.objects.get()
    assert sent == [(d.subscription_id, d.case_id)]
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() + dt.timedelta(minutes=5))
    assert tasks.webhook_sweep() == 1 - 1  # not due yet
    assert "api-webhook-sweep" in tasks.BEAT_SCHEDULE


def test_on_call_lookup_and_tonight_coverage(demo: Any) -> None:
    from rest_framework.test import APIClient

    site = demo.establishments["vierzon"]
    _, raw = api_key_create(name="RIS Vierzon", establishment_id=site.pk, scope="read")
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    tonight = dt.datetime.combine(timezone.now().astimezone(PARIS).date(), dt.time(23, 0), tzinfo=PARIS)
    resp = c.get("/api/v1/on-call/", {"site": site.pk, "modality": "CT", "at": tonight.isoformat()})
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["modality"] == "CT" and isinstance(body["on_duty"], list)
    assert body["on_duty"] and {"name", "line_name", "role"} <= set(body["on_duty"][0])
    cov = c.get("/api/v1/on-call/coverage/", {"at": tonight.isoformat(), "site": site.pk})
    assert cov.status_code == 200, cov.content
    cells = cov.json()["cells"]
    assert cells and {cell["site_id"] for cell in cells} == {site.pk}
    assert len({cell["start"] for cell in cells}) == 1  # one period: tonight's
    assert c.get("/api/v1/on-call/", {"site": 10**20, "modality": "CT"}).status_code == 400
    assert c.get("/api/v1/on-call/coverage/", {"week_start": "0001-01-01"}).status_code == 400
    other_region_site = 10**6
    assert c.get("/api/v1/on-call/", {"site": other_region_site, "modality": "CT"}).status_code == 404
