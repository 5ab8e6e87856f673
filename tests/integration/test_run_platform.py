"""`make run` under fire: the embedded default (SQLite, embedded broker) started by ``run_platform`` keeps
serving when its children are killed. Each of the worker, beat, a gateway worker process and the gateway
itself is killed with SIGKILL in turn; each comes back by itself, /healthz reports the restarts, the web app
never stops answering, and a study sent afterwards by dcmtk ``storescu`` is assigned to the radiologist on
duty. Ctrl-C then stops everything (checked by ``platform_running``)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.platform import (
    VIERZON,
    ApiClient,
    Platform,
    embedded_env,
    healthz_all_ok,
    manage,
    platform_running,
    storescu,
    write_ct_study,
)
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not shutil.which("storescu"), reason="Debian dcmtk is required")]



def _children(pid: int) -> set[int]:
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except FileNotFoundError:
        return set()


def _processes(platform: Platform) -> dict[str, Any]:
    return dict(platform.healthz().json().get("processes", {}))


def _restarted(platform: Platform, name: str, old_pid: int, restarts: int) -> dict[str, Any] | None:
    """The supervisor saw ``name`` die and started it again, and every check is green again."""
    r = platform.healthz()
    body = r.json()
    child = body.get("processes", {}).get(name, {})
    if r.status_code == 200 and child.get("restarts") == restarts and child.get("state") == "running" \
            and child.get("pid") not in (None, old_pid):
        return dict(body)
    return None


def test_killed_children_come_back_and_a_study_sent_afterwards_is_assigned(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "load_demo")
    with platform_running(env, tmp_path) as platform:
        body = healthz_all_ok(platform)
        banner = platform.log.read_text(errors="replace")
        assert "embedded default (SQLite, embedded broker" in banner and "coordinateur" in banner
        assert VIERZON["ae"] in banner and platform.base in banner
        assert set(body["processes"]) == {"web", "worker", "beat", "gateway"}

        for name in ("worker", "beat"):
            pid = body["processes"][name]["pid"]
            os.kill(pid, signal.SIGKILL)
            body = wait_until(lambda n=name, p=pid: _restarted(platform, n, p, 1), timeout=90, interval=1,
                              message=f"{name} restarted and healthy")
            assert body["processes"][name]["last_exit"] == -signal.SIGKILL
            # The web app and the gateway were not touched.
            assert body["processes"]["web"]["restarts"] == 0 and body["processes"]["gateway"]["restarts"] == 0

        # A process of the gateway's own pool: the gateway replaces it, nobody else notices.
        gateway = body["processes"]["gateway"]["pid"]
        pool = wait_until(lambda: _children(gateway), timeout=30, message="gateway pool processes")
        victim = min(pool)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(_children(gateway)) == len(pool) and victim not in _children(gateway),
                   timeout=30, message="gateway pool process replaced")
        assert _processes(platform)["gateway"]["restarts"] == 0

        # The gateway itself: the supervisor starts it again (its pool goes with it, the port is freed).
        os.kill(gateway, signal.SIGKILL)
        body = wait_until(lambda: _restarted(platform, "gateway", gateway, 1), timeout=90, interval=1,
                          message="gateway restarted")
        assert requests.get(f"{platform.base}/accounts/login/", timeout=10).status_code == 200

        # A study sent now reaches the radiologist on duty.
        tag = secrets.token_hex(4).upper()
        accession = f"KILL-{tag}"
        files = write_ct_study(tmp_path / "study", accession=accession, patient_id=f"IPP-{tag}",
                               patient_name=f"SUPERVISED^{tag}", description=f"Scanner cérébral {tag}")
        wait_until(lambda: storescu(platform.dicom_port, files, calling_ae=VIERZON["ae"]), timeout=60, interval=2,
                   message="gateway accepts the study")
        ris = ApiClient(platform, manage(platform.env, "api_key_create", "--finess", VIERZON["finess"],
                                                  "--name", f"RIS {tag}").strip())

        def assigned() -> dict[str, Any] | None:
            found = ris.get("/api/v1/requests/", accession_number=accession)["results"]
            return found[0] if found and found[0]["assignment"]["state"] == "offered" else None

        request = wait_until(assigned, timeout=90, interval=1, message="the case offered to the radiologist")
        assert request["assignment"]["radiologist"]
        log = platform.log.read_text(errors="replace")
        assert "JSONDecodeError" not in log
        assert "process 'worker'" in log and "restarting it" in log
