"""The sealer as deployed: celery beat schedules ``audit.seal``, a real worker runs it, and
``manage.py verify_audit`` run by an operator finds the trail sealed, checkpointed and intact."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from apps.audit.models import AuditSeal
from tests.audit.support import entries
from tests.support.processes import ROOT, celery_worker_cmd, running, wait_until

pytestmark = pytest.mark.integration


def test_beat_and_a_worker_seal_the_trail_and_verify_audit_agrees(process_env: dict[str, str], tmp_path: Path,
                                                                  checkpoint_file: Path) -> None:
    from pds_platform.celery import app

    if process_env.get("CELERY_BROKER_URL", "").startswith("redis"):
        app.control.purge()  # this test's Redis db: no leftovers from an earlier run
    (tmp_path / "var").mkdir(exist_ok=True)
    env = {**process_env, "PDS_AUDIT_CHECKPOINT_FILE": str(checkpoint_file), "PDS_AUDIT_SEAL_SECONDS": "1",
           "PDS_AUDIT_SEAL_SETTLE_SECONDS": "1"}
    rows = entries(4)
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    beat = [sys.executable, "-m", "celery", "-A", "pds_platform", "beat", "-l", "INFO",
            "-s", str(tmp_path / "beat-schedule")]
    with running(celery_worker_cmd("-n", "audit@%h"), env, worker_log,
                 ready=lambda: "ready." in worker_log.read_text(errors="replace"), timeout=60), \
            running(beat, env, beat_log, ready=lambda: "beat: Starting" in beat_log.read_text(errors="replace")):
        wait_until(lambda: AuditSeal.objects.count() == len(rows), timeout=60, message="entries sealed by beat")
        wait_until(checkpoint_file.exists, timeout=10, message="checkpoint written")
    res = subprocess.run([sys.executable, "manage.py", "verify_audit", "--max-lag", "60"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "audit trail intact: 4 entries, 4 sealed, 0 not yet sealed, 1 checkpoint lines" in res.stdout
