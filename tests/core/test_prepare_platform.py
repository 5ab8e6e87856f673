"""`manage.py prepare_platform` (run by `make run` and docker compose) as an operator runs it: in a subprocess,
on the test database, with production settings. The demo region appears only when asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from apps.accounts.models import User
from tests.support import processes
from tests.support.processes import ROOT


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return processes.production_env(tmp_path, processes.test_database_url(), **extra)


def _prepare(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, "manage.py", "prepare_platform", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


@pytest.mark.django_db(transaction=True)
def test_production_collects_static_files_and_loads_no_demo(tmp_path: Path) -> None:
    res = _prepare(_production_env(tmp_path))
    assert (tmp_path / "static" / "staticfiles.json").is_file()
    assert "Demo region not loaded" in res.stdout
    assert not User.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_production_loads_the_demo_when_asked_and_skips_static_files_built_into_the_image(tmp_path: Path) -> None:
    res = _prepare(_production_env(tmp_path, PDS_LOAD_DEMO="1"), "--skip-collectstatic")
    assert "Demo region" in res.stdout and "ready" in res.stdout
    assert User.objects.filter(username="coordinateur").exists()
    assert not (tmp_path / "static" / "staticfiles.json").exists()


@pytest.mark.parametrize(("debug", "load_demo", "expected"), [
    ("1", None, "True"),    # the embedded default always has its demo
    ("0", None, "False"),   # production: none unless asked
    ("0", "1", "True"),
    ("1", "0", "False"),    # a developer may opt out
])
def test_load_demo_default_follows_debug(tmp_path: Path, debug: str, load_demo: str | None, expected: str) -> None:
    extra: dict[str, Any] = {"DJANGO_DEBUG": debug, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    if load_demo is not None:
        extra["PDS_LOAD_DEMO"] = load_demo
    code = ("import django;django.setup();from django.conf import settings;print(settings.PDS_LOAD_DEMO)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**_production_env(tmp_path, **extra), "DJANGO_SETTINGS_MODULE": "pds_platform.settings"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[-1] == expected
