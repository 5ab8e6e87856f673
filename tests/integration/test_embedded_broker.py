"""Soak test of the embedded broker (pds_platform/broker.py): a real prefork Celery worker with the platform's own
Celery settings, several publisher processes at once, then a worker killed with SIGKILL while tasks are in flight.

The app (tests/support/broker_app.py) records each task's token with one O_APPEND write, so the record file
tells how many times each message was handled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.processes import ROOT, running, wait_until

pytestmark = pytest.mark.integration

PUBLISHERS = ("web", "gateway", "beat")
PER_PUBLISHER = 1000


def _env(tmp_path: Path) -> dict[str, str]:
    # No DJANGO_SETTINGS_MODULE: the worker is Celery and the broker alone (the app reads the CELERY_* settings
    # from the settings module itself), so the test does not depend on the rest of the platform.
    env = {k: v for k, v in os.environ.items()
           if k not in ("CELERY_BROKER_URL", "REDIS_URL", "PDS_TEST_DB_NAME", "DJANGO_SETTINGS_MODULE")}
    env.update({"PDS_VAR_DIR": str(tmp_path / "var"), "PDS_SOAK_RECORD": str(tmp_path / "record.txt"),
                "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(ROOT), "DJANGO_DEBUG": "1"})
    return env


def _worker(tmp_path: Path, name: str) -> list[str]:
    # As run_platform starts it: prefork, two processes, mingle and gossip left on.
    return [sys.executable, "-m", "celery", "-A", "tests.support.broker_app", "worker", "-l", "INFO",
            "--concurrency", "2", "--pool", "prefork", "-n", f"{name}@%h"]


def _publish(env: dict[str, str], cwd: Path, count: int, seconds: float = 0.0) -> None:
    procs = [subprocess.Popen([sys.executable, "-m", "tests.support.broker_app", name, str(count), str(seconds)],
                              cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for name in PUBLISHERS]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out.decode(errors="replace")[-3000:]


def _records(tmp_path: Path) -> Counter[str]:
    path = tmp_path / "record.txt"
    return Counter(path.read_text().split()) if path.exists() else Counter()


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _assert_clean_log(log: Path) -> None:
    text = log.read_text(errors="replace")
    for bad in ("Traceback", "JSONDecodeError", "ERROR", "CRITICAL", "Unrecoverable"):
        assert bad not in text, f"{bad} in the worker log:\n{text[-4000:]}"


def test_three_publishers_and_a_worker_every_message_handled_exactly_once(tmp_path):
    env, cwd = _env(tmp_path), tmp_path / "cwd"
    cwd.mkdir()
    broker = tmp_path / "var" / "broker"
    log = tmp_path / "worker.log"
    with running(_worker(tmp_path, "soak"), env, log, ready=lambda: "ready." in log.read_text(errors="replace"),
                 timeout=60) as worker:
        started = time.monotonic()
        _publish(env, cwd, PER_PUBLISHER)
        total = len(PUBLISHERS) * PER_PUBLISHER
        wait_until(lambda: sum(_records(tmp_path).values()) >= total, timeout=90, interval=0.5,
                   message=f"{total} tasks handled")
        # Every message acknowledged: nothing left queued or claimed.
        wait_until(lambda: not _files(broker / "in") and not _files(broker / "processing"), timeout=10,
                   message="broker folders empty")
        elapsed = time.monotonic() - started
        assert worker.poll() is None, "the worker died"
    records = _records(tmp_path)
    expected = {f"{name}-{i}" for name in PUBLISHERS for i in range(PER_PUBLISHER)}
    assert set(records) == expected
    assert [token for token, n in records.items() if n != 1] == []
    assert not _files(broker / "bad") and not _files(broker / "tmp")
    _assert_clean_log(log)
    # The exchange tables live under var/broker, not in the working directory (kombu's default).
    assert (broker / "control" / "celery.exchange").exists() and not (cwd / "control").exists()
    print(f"{total} messages from {len(PUBLISHERS)} publishers handled in {elapsed:.1f}s")


def test_a_worker_killed_with_sigkill_loses_no_message(tmp_path):
    env, cwd = _env(tmp_path), tmp_path / "cwd"
    cwd.mkdir()
    processing = tmp_path / "var" / "broker" / "processing"
    per_publisher = 100
    expected = {f"{name}-{i}" for name in PUBLISHERS for i in range(per_publisher)}
    first_log, second_log = tmp_path / "worker1.log", tmp_path / "worker2.log"
    # Each task takes 50 ms: the worker is killed while two of them run, with late ack.
    with running(_worker(tmp_path, "first"), env, first_log,
                 ready=lambda: "ready." in first_log.read_text(errors="replace"), timeout=60) as first:
        _publish(env, cwd, per_publisher, seconds=0.05)
        wait_until(lambda: sum(_records(tmp_path).values()) >= 60 and _files(processing), timeout=60,
                   interval=0.01, message="tasks in flight")
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool processes, as the OOM killer or kill -9
        first.wait(10)
    handled_before = _records(tmp_path)
    stranded = _files(processing)
    assert stranded, "messages claimed by the killed worker are kept"
    assert len(handled_before) < len(expected)

    with running(_worker(tmp_path, "second"), env, second_log,
                 ready=lambda: "ready." in second_log.read_text(errors="replace"), timeout=60) as second:
        wait_until(lambda: set(_records(tmp_path)) == expected, timeout=60, interval=0.5,
                   message="every message handled after the restart")
        wait_until(lambda: not _files(processing), timeout=10, message="no message left claimed")
        assert second.poll() is None
    records = _records(tmp_path)
    assert set(records) == expected  # none lost
    # Only the messages in flight at the kill can run twice (prefetch = concurrency = 2).
    assert sum(records.values()) - len(expected) <= 2, records.most_common(5)
    assert "unacknowledged message(s) of dead consumer" in second_log.read_text()
    _assert_clean_log(second_log)
