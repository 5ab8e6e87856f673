"""`make run` smoke test: the embedded default (SQLite, filesystem broker) starts every process and /healthz answers."""

import os
import signal
import subprocess
import sys

import pytest
import requests

from tests.support.processes import ROOT, free_port, wait_until

pytestmark = pytest.mark.integration


def test_embedded_platform_starts_and_is_healthy(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "PDS_TEST_DB_NAME")}
    web_port, dicom_port = free_port(), free_port()
    env.update({"PDS_VAR_DIR": str(tmp_path / "var"), "PDS_DICOM_PORT": str(dicom_port),
                "PDS_DICOM_STORAGE_ROOT": str(tmp_path / "dicom"), "PDS_TEST_FAST_HASHER": "1",
                "PYTHONUNBUFFERED": "1", "DJANGO_DEBUG": "1"})
    for step in (["migrate", "--noinput", "-v0"], ["load_demo"]):
        subprocess.run([sys.executable, "manage.py", *step], cwd=ROOT, env=env, check=True, timeout=300)
    assert (tmp_path / "var" / "db.sqlite3").exists()
    log = open(tmp_path / "platform.log", "wb")
    proc = subprocess.Popen([sys.executable, "manage.py", "run_platform", "--web-port", str(web_port)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def healthy():
            r = requests.get(f"http://127.0.0.1:{web_port}/healthz", timeout=5)
            return r.status_code == 200 and r.json()
        try:
            body = wait_until(healthy, timeout=90, interval=1, message="/healthz 200")
        except AssertionError:
            log.flush()
            raise AssertionError((tmp_path / "platform.log").read_text()[-5000:]) from None
        assert body["checks"] == {"database": "ok", "broker": "ok", "worker": "ok", "gateway": "ok"}
        out = (tmp_path / "platform.log").read_text()
        assert "coordinateur" in out and "VIERZON_CT" in out and f"127.0.0.1:{web_port}" in out
        login = requests.get(f"http://127.0.0.1:{web_port}/admin/login/", timeout=5)
        assert login.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        log.close()
    assert proc.returncode in (0, -signal.SIGINT), (tmp_path / "platform.log").read_text()[-3000:]
    assert "All processes stopped." in (tmp_path / "platform.log").read_text()
