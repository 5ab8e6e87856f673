"""The DICOM gateway as a real process under faults (issue 15): the sender must learn what happened.

The database is made unreachable for the gateway alone (a PostgreSQL URL on a closed port, or a database
that does not exist on the test server): the machine's PostgreSQL is shared and stays up."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import child_env, free_port, manage_cmd, running

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not shutil.which("echoscu"), reason="Debian dcmtk is required")]

AET = "PDS_GATEWAY"


def _echo(port: int) -> str:
    r = subprocess.run(["echoscu", "-v", "-aet", "VIERZON_CT", "-aec", AET, "127.0.0.1", str(port)],
                       capture_output=True, text=True, timeout=60)
    return r.stdout + r.stderr


@pytest.mark.parametrize("database_url", [
    pytest.param(f"postgres://postgres@127.0.0.1:{free_port()}/pds", id="closed-port"),
    pytest.param("postgres://postgres@127.0.0.1:5432/pds_no_such_database_issue15", id="no-such-database"),
])
def test_database_down_the_sender_sees_a_transient_rejection(database_url: str, tmp_path: Path):
    """Before: the A-ASSOCIATE-RJ was queued, the socket closed before it left, echoscu said 'Peer aborted'."""
    port = free_port()
    env = child_env(tmp_path, DATABASE_URL=database_url, PDS_DICOM_PORT=str(port), PDS_DICOM_AET=AET,
                    PDS_DICOM_WORKERS="2", PDS_DICOM_MIN_FREE_MB="50")
    log = tmp_path / "gateway.log"
    with running(manage_cmd("run_gateway"), env, log, ready=lambda: "listening on" in log.read_text(), timeout=60):
        for _ in range(4):  # both children, several times (the first waits in the backlog for a child to start)
            out = _echo(port)
            assert "Association Rejected" in out and "Rejected Transient" in out, out
            assert "Peer aborted" not in out, out
