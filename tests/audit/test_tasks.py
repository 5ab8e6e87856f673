"""The sealer runs under beat: its task is scheduled and seals what is due."""

from __future__ import annotations

from apps.audit.selectors import audit_verify
from apps.audit.tasks import BEAT_SCHEDULE, seal
from tests.audit.support import entries


def test_seal_task_is_scheduled_by_beat():
    from pds_platform.celery import BEAT_MODULES, app

    assert "apps.audit.tasks" in BEAT_MODULES
    app.finalize()
    assert app.conf.beat_schedule["audit-seal"] == BEAT_SCHEDULE["audit-seal"]
    assert BEAT_SCHEDULE["audit-seal"]["task"] == seal.name == "audit.seal"


def test_seal_task_seals_and_checkpoints(db, settings, checkpoint_file):
    settings.PDS_AUDIT_SEAL_SETTLE_SECONDS = 0
    entries(3)
    assert seal() == 3
    assert seal() == 0
    report = audit_verify()
    assert report.intact and (report.sealed, report.checkpoints) == (3, 1)
    assert checkpoint_file.read_text().count("\n") == 1
