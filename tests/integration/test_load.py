"""A busy night, short form (issue 15): four scanners of two demo sites send small CT studies at once for 30 s with
dcmtk ``storescu`` to the platform in production configuration (``DJANGO_DEBUG=0``, a fresh PostgreSQL database,
a flushed Redis database, ``manage.py run_platform``). No image may be refused, PostgreSQL may detect no deadlock,
and every study the gateway acknowledged must reach a radiologist (alerted of its case).

The same senders and readings as ``benchmarks/load.py`` (``tests/support/load.py``); timing belongs to the
benchmark, not here.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest

from tests.support import load
from tests.support.platform import (
    manage,
    manage_alongside,
    platform_running,
    postgres_database,
    production_env,
    redis_database,
    self_signed_cert,
)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not shutil.which("storescu"), reason="Debian dcmtk is required")]

SENDERS = 4
SECONDS = 30.0
SLICES = 20
# Two senders per site: a site's scanners send in parallel, and their studies contend for the same site's rows;
# every fifth study gets a late series once complete (the gateway's late image holds the study, then flags its
# case, while routing may hold the case).
SITES = 2


def test_a_busy_night_loses_and_refuses_nothing(tmp_path: Path) -> None:
    server = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("PDS_JOURNEY_REDIS_URL") or os.environ.get("REDIS_URL", "")
    if not server.startswith(("postgres://", "postgresql://")) or not redis_url.startswith("redis"):
        pytest.skip("needs this machine's PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    cert, key = self_signed_cert(tmp_path)
    name = f"pds_load_{secrets.token_hex(4)}"
    with postgres_database(server, name) as database_url, redis_database(redis_url):
        env = production_env(tmp_path, database_url=database_url, redis_url=redis_url, cert=cert, key=key,
                             PDS_SMS_BACKEND="apps.routing.notifiers.FileSmsBackend",
                             PDS_SMS_FILE=str(tmp_path / "sms.log"))
        # As the Docker image is deployed: static files collected alongside, then the database prepared with the
        # demo region (PDS_LOAD_DEMO=1).
        with manage_alongside(env, "collectstatic", "--noinput", "-v0"):
            manage(env, "prepare_platform", "--skip-collectstatic")
        with platform_running(env, tmp_path) as platform:
            before = load.deadlocks(database_url)
            server_log = load.ServerLog.open()
            run = load.load_send(platform.dicom_port, tmp_path / "senders", senders=SENDERS, seconds=SECONDS,
                                 slices=SLICES, sites=SITES, late_every=5, late_after=2.0)  # quiet period: 1 s
            with load.connect(database_url) as conn:
                times = load.wait_settled(conn, [s.study_uid for s in run.acknowledged_studies()], timeout=45)
            errors = platform.errors_logged_since_ready()
        # Read once every backend has exited: each reports its counters when it ends.
        outcome = load.LoadOutcome(run, times, load.deadlocks(database_url) - before, server_log.deadlocks(name))
    print(outcome.figures())
    context = f"{outcome.figures()}\nERROR lines of the platform's log:\n" + "\n".join(errors[:20])
    assert len(run.studies) >= 2 * SENDERS, context  # the senders did send (a study takes well under 15 s)
    assert outcome.refused() == {}, context
    assert outcome.deadlocks == 0 and outcome.deadlocks_in_log in (0, None), context
    lost = [(s.calling_ae, s.accession, times.get(s.study_uid)) for s in outcome.lost()]
    assert not lost, f"{len(lost)} acknowledged studies reached no radiologist: {lost[:5]}\n{context}"
