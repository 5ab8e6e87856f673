import datetime as dt

from django.utils import timezone

from apps.core.heartbeat import heartbeat_beat
from apps.core.models import Heartbeat


def test_healthz_degraded_without_worker_and_gateway(client, db):
    resp = client.get("/healthz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["worker"] == "down" and body["checks"]["gateway"] == "down"


def test_healthz_ok_when_all_beat(client, db):
    heartbeat_beat("worker@test", "worker")
    heartbeat_beat("gateway@test", "gateway")
    resp = client.get("/healthz")
    assert resp.json()["checks"]["broker"] == "ok", resp.json()
    assert resp.status_code == 200 and resp.json()["status"] == "ok"


def test_stale_heartbeat_counts_as_down(client, db):
    Heartbeat.objects.create(name="worker@old", kind="worker", last_seen=timezone.now() - dt.timedelta(minutes=5))
    heartbeat_beat("gateway@test", "gateway")
    assert client.get("/healthz").json()["checks"]["worker"] == "down"
