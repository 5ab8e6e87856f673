"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The services' exact commands and health checks are run here against this machine's PostgreSQL and Redis, with
the compose file's own environment (host names, volumes and ports mapped onto the test's), so that a command
that cannot start, or a health check that cannot pass, fails here and not at the first `docker compose up`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands

from tests.support.processes import ROOT, free_port, running, wait_until

APP_SERVICES = ("web", "worker", "beat", "gateway")
# One audit key for every service, as one .env gives them: the worker seals what the web process MACed.
AUDIT_KEY = secrets.token_urlsafe(48)


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_describes_the_whole_production_configuration() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "prepare", *APP_SERVICES}
    for name in ("prepare", *APP_SERVICES):
        service = services[name]
        assert service["build"] == "." and service["environment"]["DJANGO_DEBUG"] == "0"
        assert "${DJANGO_SECRET_KEY:?" in service["environment"]["DJANGO_SECRET_KEY"]
        assert "${PDS_AUDIT_KEY:?" in service["environment"]["PDS_AUDIT_KEY"]
        argv = service["command"]
        if argv[1] == "manage.py":
            assert argv[2] in get_commands(), f"{name}: no management command {argv[2]}"
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["prepare"] == {"condition": "service_completed_successfully"}
        assert services[name]["healthcheck"]["test"] == ["CMD", "python", "manage.py", "health_probe", name]
    assert services["prepare"]["restart"] == "no"
    assert {"postgres", "redis"} <= set(services["prepare"]["depends_on"])
    assert services["beat"]["command"][-2:] == ["--schedule", "/data/var/celerybeat-schedule"]


def test_docker_build_context_leaves_out_secrets_and_local_state() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".git", ".venv", "var", "control", "**/__pycache__"} <= ignored


def test_dockerfile_collects_static_files_with_a_key_the_settings_accept() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    key = re.search(r"DJANGO_SECRET_KEY=(\S+)", dockerfile)
    assert key and len(key.group(1)) >= 50
    audit_key = re.search(r"PDS_AUDIT_KEY=(\S+)", dockerfile)
    assert audit_key and len(audit_key.group(1)) >= 32
    assert "collectstatic --noinput" in dockerfile and "DJANGO_DEBUG=0" in dockerfile
    assert '"python:pds_platform.gunicorn_conf"' in dockerfile


def _service_env(service: dict[str, Any], tmp_path: Path, database_url: str, redis_url: str,
                 ports: dict[str, str]) -> dict[str, str]:
    """The compose service's environment, interpolated and mapped onto this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PDS_", "DATABASE_", "CELERY_"))}
    for key, value in service["environment"].items():
        value = str(value).replace("/data/", f"{tmp_path}/")
        env[key] = ports.get(value, value)
    env.update({"DJANGO_SECRET_KEY": secrets.token_urlsafe(64), "PDS_AUDIT_KEY": AUDIT_KEY,
                "DJANGO_ALLOWED_HOSTS": "pds.example.org",
                "DATABASE_URL": database_url, "CELERY_BROKER_URL": redis_url, "REDIS_URL": redis_url,
                "PYTHONUNBUFFERED": "1"})
    return env


def _argv(argv: list[str], tmp_path: Path) -> list[str]:
    assert argv[0] == "python"
    return [sys.executable, *(a.replace("/data/", f"{tmp_path}/") for a in argv[1:])]


@pytest.mark.integration
def test_compose_services_start_with_their_exact_commands_and_pass_their_health_checks(
        process_env: dict[str, str], tmp_path: Path) -> None:
    redis_url = os.environ.get("CELERY_BROKER_URL", "")
    if not redis_url.startswith("redis://"):
        pytest.skip("needs Redis (CELERY_BROKER_URL=redis://...), as docker compose has")
    services = _compose()["services"]
    ports = {"8000": str(free_port()), "11112": str(free_port())}
    for sub in ("var", "dicom", "media"):
        (tmp_path / sub).mkdir()

    def env(name: str) -> dict[str, str]:
        return _service_env(services[name], tmp_path, process_env["DATABASE_URL"], redis_url, ports)

    prepare = subprocess.run(_argv(services["prepare"]["command"], tmp_path), cwd=ROOT, env=env("prepare"),
                             capture_output=True, text=True, timeout=300)
    assert prepare.returncode == 0, prepare.stdout + prepare.stderr

    def healthy(name: str) -> bool:
        probe = _argv(services[name]["healthcheck"]["test"][1:], tmp_path)
        return subprocess.run(probe, cwd=ROOT, env=env(name), capture_output=True, timeout=60).returncode == 0

    with ExitStack() as stack:
        for name in APP_SERVICES:
            stack.enter_context(running(_argv(services[name]["command"], tmp_path), env(name),
                                        tmp_path / f"{name}.log"))
        for name in APP_SERVICES:
            wait_until(lambda name=name: healthy(name), timeout=90, interval=1, message=f"{name} healthy")
        request = urllib.request.Request(f"http://127.0.0.1:{ports['8000']}/healthz",
                                         headers={"Host": "pds.example.org", "X-Forwarded-Proto": "https"})
        with urllib.request.urlopen(request, timeout=30) as res:
            assert json.loads(res.read())["status"] == "ok"
    # Beat keeps its schedule on the `var` volume, not in the read-only image.
    assert list((tmp_path / "var").glob("celerybeat-schedule*"))
