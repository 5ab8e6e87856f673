"""What a person reads in the beat and worker logs (pds_platform/celery.py)."""

from __future__ import annotations

import logging

from pds_platform.celery import app


def test_beat_sends_are_debug_lines_and_starting_and_errors_stay(caplog):
    beat = logging.getLogger("celery.beat")
    with caplog.at_level(logging.INFO):
        beat.info("beat: Starting...")
        beat.info("Scheduler: Sending due task %s (%s)", "studies-reconcile", "studies.reconcile")
        beat.error("Message Error: %s", "boom")
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "celery.beat"] == [
        ("INFO", "beat: Starting..."), ("ERROR", "Message Error: boom")]

    caplog.clear()
    with caplog.at_level(logging.DEBUG):  # celery beat -l DEBUG still shows them
        beat.info("Scheduler: Sending due task %s (%s)", "studies-reconcile", "studies.reconcile")
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "celery.beat"] == [
        ("DEBUG", "Scheduler: Sending due task studies-reconcile (studies.reconcile)")]


def test_namespaced_celery_settings_are_not_reported_as_deprecated():
    assert not app.conf.maybe_warn_deprecated_settings()
