"""The run_platform supervisor with real child processes: a dead child is restarted with backoff, the others
are left alone, orphans of the dead child go with it, and the state is published for /healthz."""

from __future__ import annotations

import os
import signal
import sys
import time

from apps.core.models import Heartbeat
from apps.core.supervisor import BACKOFF_FIRST_SECONDS, Supervisor
from tests.support.processes import ROOT, wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_a_killed_child_is_restarted_and_the_others_keep_running(db):
    sup = Supervisor(cwd=ROOT)
    sup.add("web", SLEEPER)
    sup.add("worker", SLEEPER)
    sup.start_all()
    try:
        web_pid, worker_pid = sup.children["web"].proc.pid, sup.children["worker"].proc.pid
        os.kill(worker_pid, signal.SIGKILL)
        wait_until(lambda: (sup.poll(), sup.children["worker"].restarts == 1)[1], timeout=10, message="restart")
        worker = sup.children["worker"]
        assert worker.proc.pid != worker_pid and _alive(worker.proc.pid)
        assert worker.last_exit == -signal.SIGKILL and worker.last_exit_at
        assert sup.children["web"].proc.pid == web_pid and _alive(web_pid)
        info = Heartbeat.objects.get(kind="supervisor").info
        assert info["children"]["worker"]["restarts"] == 1
        assert info["children"]["worker"]["last_exit"] == -signal.SIGKILL
        assert info["children"]["web"]["state"] == "running"
    finally:
        sup.stop_all(timeout=5)
    assert not any(_alive(c.proc.pid) for c in sup.children.values())
    assert not Heartbeat.objects.filter(kind="supervisor").exists()


def test_a_child_dying_young_is_restarted_with_growing_backoff(db):
    sup = Supervisor(cwd=ROOT)
    sup.add("crasher", [sys.executable, "-c", "raise SystemExit(3)"])
    sup.start_all()
    try:
        starts = []
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and sup.children["crasher"].restarts < 3:
            before = sup.children["crasher"].restarts
            sup.poll()
            if sup.children["crasher"].restarts != before:
                starts.append(time.monotonic())
            time.sleep(0.05)
        assert sup.children["crasher"].restarts == 3
        assert sup.children["crasher"].last_exit == 3
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        # 1 s, then 2 s, then 4 s: the second gap is about twice the first.
        assert gaps[0] >= 2 * BACKOFF_FIRST_SECONDS * 0.9 and gaps[1] >= 4 * BACKOFF_FIRST_SECONDS * 0.9, gaps
    finally:
        sup.stop_all(timeout=5)


def test_orphans_of_a_dead_child_are_killed_with_it(db, tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    parent = [sys.executable, "-c",
              "import subprocess, sys, time\n"
              f"p = subprocess.Popen({SLEEPER!r})\n"
              f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
              "time.sleep(600)\n"]
    sup = Supervisor(cwd=ROOT)
    sup.add("pool", parent)
    sup.start_all()
    try:
        wait_until(lambda: pidfile.exists() and pidfile.read_text(), timeout=10, message="grandchild started")
        grandchild = int(pidfile.read_text())
        os.kill(sup.children["pool"].proc.pid, signal.SIGKILL)
        wait_until(lambda: (sup.poll(), sup.children["pool"].last_exit is not None)[1], timeout=10,
                   message="death noticed")
        wait_until(lambda: not _alive(grandchild), timeout=5, message="orphan killed")
    finally:
        sup.stop_all(timeout=5)
