"""`manage.py health_probe`, the container health check of docker compose's services."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.core.models import Heartbeat
from tests.support.processes import ROOT, child_env, free_port, running


def _beat(name: str, kind: str, age_seconds: float = 0) -> None:
    Heartbeat.objects.create(name=name, kind=kind, last_seen=timezone.now() - timedelta(seconds=age_seconds))


@pytest.mark.django_db
def test_a_fresh_heartbeat_of_this_host_is_healthy() -> None:
    _beat(f"worker@{socket.gethostname()}:4242", "worker")
    call_command("health_probe", "worker")


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "kind", "age"), [
    ("worker@another-container:4242", "worker", 0),   # another host's worker does not make this one healthy
    ("{host}:4242", "worker", 60),                    # stale
    ("{host}:4242", "beat", 0),                       # another kind on this host
])
def test_no_fresh_heartbeat_of_this_host_is_unhealthy(name: str, kind: str, age: float) -> None:
    _beat(name.format(host=f"{kind}@{socket.gethostname()}"), kind, age)
    with pytest.raises(CommandError):
        call_command("health_probe", "worker")


def test_web_probe_talks_to_production_gunicorn(process_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {**process_env, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
           "PDS_AUDIT_KEY": secrets.token_urlsafe(48),
           "DJANGO_ALLOWED_HOSTS": ".example.org", "PDS_WEB_HOST": "0.0.0.0", "PDS_WEB_PORT": str(port),
           "PDS_WEB_WORKERS": "1", "DJANGO_STATIC_ROOT": str(tmp_path / "static")}
    probe = [sys.executable, "manage.py", "health_probe", "web"]
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "python:pds_platform.gunicorn_conf", "pds_platform.wsgi:application"]

    def probe_ok() -> bool:
        return subprocess.run(probe, cwd=ROOT, env=env, capture_output=True, timeout=60).returncode == 0

    # Nothing listens yet: unhealthy.
    res = subprocess.run(probe, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "ConnectionRefusedError" in res.stderr
    with running(gunicorn, env, tmp_path / "web.log", ready=probe_ok, timeout=60):
        res = subprocess.run(probe, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        # No worker, beat or gateway runs here: /healthz is 503, yet the web process itself works.
        assert res.returncode == 0, res.stderr
        assert "answered 503 (degraded)" in res.stdout
    assert "GET /healthz" in (tmp_path / "web.log").read_text()


def test_gunicorn_refuses_half_a_tls_configuration(tmp_path: Path) -> None:
    env = {**child_env(tmp_path), "PDS_WEB_TLS_CERT": str(tmp_path / "cert.pem"), "PDS_WEB_PORT": str(free_port())}
    res = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "python:pds_platform.gunicorn_conf",
                          "--check-config", "pds_platform.wsgi:application"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "PDS_WEB_TLS_CERT and PDS_WEB_TLS_KEY must be set together" in res.stdout + res.stderr
