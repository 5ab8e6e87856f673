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
    heartbeat_beat("beat@test", "beat")
    resp = client.get("/healthz")
    assert resp.json()["checks"]["broker"] == "ok", resp.json()
    assert resp.status_code == 200 and resp.json()["status"] == "ok"


def test_stale_heartbeat_counts_as_down(client, db):
    Heartbeat.objects.create(name="worker@old", kind="worker", last_seen=timezone.now() - dt.timedelta(minutes=5))
    heartbeat_beat("gateway@test", "gateway")
    assert client.get("/healthz").json()["checks"]["worker"] == "down"


def test_healthz_degraded_when_beat_is_down(client, db):
    heartbeat_beat("worker@test", "worker")
    heartbeat_beat("gateway@test", "gateway")
    Heartbeat.objects.create(name="beat@old", kind="beat", last_seen=timezone.now() - dt.timedelta(minutes=2))
    resp = client.get("/healthz")
    assert resp.status_code == 503 and resp.json()["checks"]["beat"] == "down"


def test_healthz_reports_the_supervised_processes(client, db):
    children = {"worker": {"state": "running", "pid": 42, "restarts": 2, "last_exit": -9,
                           "last_exit_at": "2026-11-30T20:00:00+00:00"}}
    heartbeat_beat("supervisor@test:1", "supervisor", {"pid": 1, "children": children})
    assert client.get("/healthz").json()["processes"] == children
    Heartbeat.objects.filter(kind="supervisor").update(last_seen=timezone.now() - dt.timedelta(minutes=5))
    assert "processes" not in client.get("/healthz").json()


def test_a_503_from_the_health_probe_is_not_logged_as_an_error(client, db, caplog):
    import logging

    from apps.core.logs import HealthProbeFilter

    # Wired by settings.LOGGING on the django.request logger.
    assert any(isinstance(f, HealthProbeFilter) for f in logging.getLogger("django.request").filters)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get("/healthz").status_code == 503
        assert client.get("/no-such-page-at-all").status_code == 404
    messages = [r.getMessage() for r in caplog.records]
    assert not any("/healthz" in m for m in messages), messages
    assert any("/no-such-page-at-all" in m for m in messages), messages


# --- Issue 15, item 4: health that tells the truth about the work, not only the processes -----------------

def _all_processes_up() -> None:
    for kind in ("worker", "gateway", "beat"):
        heartbeat_beat(f"{kind}@test", kind)


def test_healthz_names_a_stale_beat_and_its_age(client, db):
    _all_processes_up()
    Heartbeat.objects.filter(kind="beat").update(last_seen=timezone.now() - dt.timedelta(seconds=90))
    body = client.get("/healthz").json()
    assert body["failing"] == ["beat"]
    assert 89 <= body["figures"]["beat"]["heartbeat_age_seconds"] <= 95
    assert body["figures"]["beat"]["stale_after_seconds"] == 20


def test_healthz_degrades_when_the_audit_sealer_lags(client, db, settings, tmp_path, monkeypatch):
    from apps.audit.services import audit_record, audit_seal

    settings.PDS_AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.log")
    _all_processes_up()
    audit_record(action="read", object_type="test.health", object_id="1")
    assert client.get("/healthz").status_code == 200  # just written: within the settle delay
    # An entry written 200 s ago and never sealed (the trail is append-only: the clock is what moves).
    past = timezone.now() - dt.timedelta(seconds=200)
    with monkeypatch.context() as clock:
        clock.setattr(timezone, "now", lambda: past)
        audit_record(action="read", object_type="test.health", object_id="2")
    resp = client.get("/healthz")
    body = resp.json()
    assert resp.status_code == 503 and body["failing"] == ["audit_seal"]
    assert body["checks"]["audit_seal"] == "degraded"
    assert 199 <= body["figures"]["audit_seal"]["lag_seconds"] <= 210
    assert body["figures"]["audit_seal"]["max_lag_seconds"] == 120
    settings.PDS_HEALTH_SEAL_LAG_SECONDS = 300
    assert client.get("/healthz").status_code == 200
    settings.PDS_HEALTH_SEAL_LAG_SECONDS = 120
    assert audit_seal(settle_seconds=0).sealed == 2  # the sealer catches up: healthy again
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["figures"]["audit_seal"]["lag_seconds"] == 0


def test_healthz_degrades_when_cases_wait_for_an_assignment(client, db, settings):
    from apps.worklist.models import AssignmentState, CaseStatus
    from tests.factories.mesh import case_create_raw, mesh_create

    _all_processes_up()
    m = mesh_create("HLT")
    now = timezone.now()
    ago = lambda minutes: now - dt.timedelta(minutes=minutes)  # noqa: E731
    # Not a backlog: recent, in someone's hands, not routable, not routed at all (ultrasound), images just in.
    case_create_raw(m, "A", "CT", "urgent", ago(1), status=CaseStatus.AWAITING_VALIDATION)
    case_create_raw(m, "A", "CT", "urgent", ago(30), status=CaseStatus.AWAITING_READING,
                    assignment_state=AssignmentState.OFFERED)
    case_create_raw(m, "A", "CT", "urgent", ago(30), status=CaseStatus.AWAITING_READING,
                    assignment_state=AssignmentState.COORDINATOR)
    case_create_raw(m, "A", "CT", "urgent", ago(30), status=CaseStatus.ACCEPTED)
    case_create_raw(m, "A", "US", "urgent", ago(30), status=CaseStatus.AWAITING_VALIDATION)
    case_create_raw(m, "A", "CT", "urgent", ago(60), status=CaseStatus.AWAITING_READING, images_complete_at=ago(1))
    body = client.get("/healthz").json()
    assert body["status"] == "ok", body
    assert body["figures"]["routing_backlog"]["waiting"] == 0

    # A request nobody was assigned for 10 minutes, and a study complete for 7 with nobody to read it.
    case_create_raw(m, "A", "CT", "vital", ago(10), status=CaseStatus.AWAITING_VALIDATION)
    case_create_raw(m, "B", "MR", "urgent", ago(90), status=CaseStatus.AWAITING_READING, images_complete_at=ago(7))
    resp = client.get("/healthz")
    body = resp.json()
    assert resp.status_code == 503 and body["failing"] == ["routing_backlog"]
    figures = body["figures"]["routing_backlog"]
    assert (figures["waiting"], figures["older_than_seconds"], figures["max_waiting"]) == (2, 300, 0)
    assert 595 <= figures["oldest_seconds"] <= 610

    settings.PDS_HEALTH_BACKLOG_MAX = 2  # a region that tolerates a small backlog
    assert client.get("/healthz").status_code == 200
    settings.PDS_HEALTH_BACKLOG_MAX, settings.PDS_HEALTH_BACKLOG_SECONDS = 0, 900
    assert client.get("/healthz").status_code == 200
