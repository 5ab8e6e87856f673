"""docs/api.md is executed: its sh blocks run in order (one bash session per part) with the real curl
against a live `manage.py runserver` sharing this test's database; its Python block verifies a real
signature."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from apps.api.services import webhook_sign
from apps.worklist.models import Case
from tests.api.conftest import report_sign, world_create
from tests.support.processes import ROOT, free_port, manage_cmd, running

pytestmark = pytest.mark.integration

DOC = ROOT / "docs" / "api.md"
REPORT_HEADING = "## 5. Fetch the signed report"


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def run_bash(script: str, env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return proc.stdout


def _up(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)  # noqa: S310 (loopback)
    except urllib.error.HTTPError:
        return True  # any HTTP answer: the server is up
    return True


def test_docs_curl_walkthrough(process_env: dict[str, str], tmp_path: Path) -> None:
    world = world_create()
    world.site_a.finess = "180000001"
    world.site_a.save(update_fields=["finess"])
    text = DOC.read_text(encoding="utf-8")
    before, after = text.split(REPORT_HEADING)
    port = free_port()
    env = {**process_env, "CELERY_BROKER_URL": "filesystem://", "PDS": f"http://127.0.0.1:{port}",
           "PATH": f"{Path(sys.executable).parent}:{process_env['PATH']}"}
    work = tmp_path / "integrator"
    work.mkdir()
    # `python manage.py` in the doc runs from the project directory; the files it writes go to `work`.
    env["PYTHONPATH"] = str(ROOT)
    (work / "manage.py").symlink_to(ROOT / "manage.py")
    state = tmp_path / "state.env"
    with running(manage_cmd("runserver", f"127.0.0.1:{port}", "--noreload"), env, tmp_path / "web.log",
                 ready=lambda: _up(f"http://127.0.0.1:{port}/healthz"), timeout=60):
        started = time.monotonic()
        out = run_bash("\n".join(blocks(before, "sh")) + f'\nprintf "KEY=%s\\nREQ=%s\\n" "$KEY" "$REQ" > {state}\n',
                       env, work)
        assert "request " in out and '"birth_name":"MARTIN"' in out
        values = dict(line.split("=", 1) for line in state.read_text().split())
        case = Case.objects.get(public_id=values["REQ"])
        assert case.origin == "api" and Case.objects.filter(idempotency_key="ORDER-2026-0001").count() == 1
        assert Case.objects.filter(idempotency_key="ORDER-2026-0002", status="cancelled").count() == 1
        report_sign(case, world.users["radiologist"], addendum="Contrôle à 24 h.")
        out = run_bash("\n".join(blocks(after, "sh")), {**env, **values}, work)
        assert "Pas de lésion hémorragique." in out and "amended" in out
        assert (work / "report.pdf").read_bytes().startswith(b"%PDF")
        assert (work / "tele-act.pdf").read_bytes().startswith(b"%PDF")
        elapsed = time.monotonic() - started
        print(f"walkthrough took {elapsed:.1f}s")
    assert elapsed < 60

    namespace: dict[str, Any] = {}
    exec(compile("\n".join(blocks(text, "python")), str(DOC), "exec"), namespace)  # noqa: S102
    ts = int(time.time())
    body = b'{"event":"report.signed"}'
    signature = webhook_sign(secret="whsec_test", timestamp=ts, body=body)
    assert namespace["pds_signature_ok"]("whsec_test", str(ts), body, signature)
    assert not namespace["pds_signature_ok"]("whsec_other", str(ts), body, signature)
