"""Helpers shared by the benchmarks (not a test): figures, scratch databases, and a whole platform started from
outside as its operators start it (``manage.py run_platform`` in its own session, stopped with Ctrl-C).

Nothing here imports Django: a benchmark may run two configurations of the platform at once, each in its own
processes with its own environment.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

# The platform's one percentile (linear interpolation, as percentile_cont); plain Python, no Django.
from apps.core.stats import percentile  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SENDER_AET = "VIERZON_CT"
GATEWAY_AET = "PDS_GATEWAY"
# The parent's variables that configure the platform: each configuration starts from none of them.
PLATFORM_ENV_PREFIXES = ("DJANGO_", "PDS_", "DATABASE_", "CELERY_", "REDIS_")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_database(url: str, suffix: str) -> str:
    """A fresh database ``<name of url>_<suffix>`` on the server of ``url`` (dropped first if left by an
    earlier run); its URL."""
    import psycopg

    u = urlparse(url)
    name = f"{(u.path or '/pds').lstrip('/') or 'pds'}_{suffix}"
    with psycopg.connect(host=u.hostname or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                         password=u.password, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return u._replace(path=f"/{name}").geturl()


def as_epoch(value: Any) -> float | None:
    """A timestamp read back from either database as seconds since the epoch (SQLite holds naive UTC text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return float(value.timestamp())


# --- A platform run from outside --------------------------------------------------------------------------


@dataclass
class Platform:
    name: str
    env: dict[str, str]
    work: Path
    web_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.work / "platform.log"

    @property
    def sms_file(self) -> Path:
        return Path(self.env["PDS_SMS_FILE"])

    @property
    def dicom_port(self) -> int:
        return int(self.env["PDS_DICOM_PORT"])

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def healthz(self) -> requests.Response:
        # Production redirects plain HTTP to HTTPS; behind a TLS-terminating proxy the request says it was HTTPS.
        return requests.get(f"http://127.0.0.1:{self.web_port}/healthz", timeout=10,
                            headers={"X-Forwarded-Proto": "https"}, allow_redirects=False)


def base_env(work: Path, quiet: float | None) -> dict[str, str]:
    """The variables of a platform under ``work`` (quiet period: the platform's default when None)."""
    work.mkdir(parents=True)  # settings create var/ but not its parents
    env = {k: v for k, v in os.environ.items() if not k.startswith(PLATFORM_ENV_PREFIXES)}
    env.update({"PDS_VAR_DIR": str(work / "var"), "PDS_DICOM_PORT": str(free_port()),
                "PDS_DICOM_STORAGE_ROOT": str(work / "dicom"),
                "PDS_DICOM_MIN_FREE_MB": "100", "PDS_SMS_BACKEND": "apps.routing.notifiers.FileSmsBackend",
                "PDS_SMS_FILE": str(work / "sms.log"), "PYTHONUNBUFFERED": "1"})
    if quiet is not None:
        env["PDS_DICOM_QUIET_SECONDS"] = str(quiet)
    return env


def production_env(work: Path, quiet: float | None, *, database_url: str, redis_url: str,
                   suffix: str) -> dict[str, str]:
    """``DJANGO_DEBUG=0`` on a fresh PostgreSQL database ``<db>_<suffix>`` and the Redis database of
    ``redis_url``, flushed first (no message of an earlier run is delivered)."""
    import redis

    env = base_env(work, quiet)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    env.update({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
                "PDS_AUDIT_KEY": secrets.token_urlsafe(48), "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
                "DATABASE_URL": create_database(database_url, suffix), "CELERY_BROKER_URL": redis_url,
                "REDIS_URL": redis_url})
    return env


def manage(env: dict[str, str], *args: str) -> None:
    r = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


def prepare_production(env: dict[str, str]) -> None:
    """As an operator prepares a production deployment of the demo region."""
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "collectstatic", "--noinput", "-v0")
    manage(env, "load_demo")


def start(platform: Platform, timeout: float = 180) -> None:
    platform.web_port = free_port()
    platform.proc = subprocess.Popen([PY, "manage.py", "run_platform", "--web-port", str(platform.web_port)],
                                     cwd=ROOT, env=platform.env, stdout=open(platform.log, "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if platform.proc.poll() is not None:
            raise RuntimeError(f"{platform.name}: run_platform exited {platform.proc.returncode}:\n"
                               f"{platform.log_tail()}")
        try:
            if platform.healthz().status_code == 200 and echo(platform.dicom_port):
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError(f"{platform.name}: /healthz not 200 (or no C-ECHO) after {timeout:.0f} s:\n"
                       f"{platform.log_tail()}")


def descendants(pid: int) -> set[int]:
    """Every live process under ``pid`` (run_platform starts each child in its own session, so its process
    group alone does not hold them)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    left = set()
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        left.add(pid)
    return left


def stop(platform: Platform) -> str:
    """Ctrl-C, as its operator stops it; what happened, in a few words. Every process it had started must
    be gone 30 s later; any left is killed and reported."""
    proc = platform.proc
    if proc is None:
        return "not started"
    children = descendants(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + 30
    while (proc.poll() is None or alive(children)) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = alive(children) | ({proc.pid} if proc.poll() is None else set())
    if left:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=10)
        return f"did NOT stop on Ctrl-C: {len(left)} of its processes killed after 30 s"
    return f"stopped on Ctrl-C (exit {proc.returncode}), its {len(children)} processes gone"


def echo(port: int, calling_ae: str = SENDER_AET) -> bool:
    from pynetdicom import AE

    ae = AE(ae_title=calling_ae)
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title=GATEWAY_AET)
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return bool(status) and status.Status == 0
