"""Start real processes of the platform (gateway, worker, web) against the test database."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_database_url() -> str:
    d = connection.settings_dict
    if connection.vendor == "postgresql":
        user = d.get("USER") or "postgres"
        return f"postgres://{user}@{d.get('HOST') or '127.0.0.1'}:{d.get('PORT') or 5432}/{d['NAME']}"
    return f"sqlite:///{d['NAME']}"


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": test_database_url(),
        "DJANGO_DEBUG": "1",
        "PDS_VAR_DIR": str(tmp_path / "var"),
        "PDS_DICOM_STORAGE_ROOT": str(tmp_path / "dicom"),
        "PDS_TEST_FAST_HASHER": "1",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("PDS_TEST_DB_NAME", None)
    env.update(extra)
    return env


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.1,
               message: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the process may not be ready yet
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}" + (f" (last error: {last_exc})" if last_exc else ""))


@contextmanager
def running(cmd: list[str], env: dict[str, str], log_path: Path, ready: Callable[[], object] | None = None,
            timeout: float = 30.0) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` for the duration of the block; on failure to get ready, show its log."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if ready is not None:
            try:
                wait_until(lambda: proc.poll() is None and ready(), timeout=timeout, message=f"{cmd[:4]} ready")
            except AssertionError:
                log.flush()
                raise AssertionError(f"{cmd} not ready; exit={proc.poll()}; log:\n" + log_path.read_text()[-4000:]) from None
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def celery_worker_cmd(*extra: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "pds_platform", "worker", "-l", "INFO", "--concurrency", "1",
            "--without-gossip", "--without-mingle", *extra]


def manage_cmd(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def production_env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment a deployment sets (DJANGO_DEBUG=0, its secrets and hosts), none of the test's own
    DJANGO_/PDS_ settings, for a manage.py run in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PDS_"))}
    env.update({
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "PDS_AUDIT_KEY": secrets.token_urlsafe(48),
        "DJANGO_ALLOWED_HOSTS": "pds.example.org",
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "PDS_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": database_url,
    })
    env.update(extra)
    return env
