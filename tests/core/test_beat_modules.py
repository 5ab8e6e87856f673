"""BEAT_MODULES (pds_platform/celery.py) names exactly the tasks modules that declare a beat schedule."""

from __future__ import annotations

import importlib
import pathlib

from pds_platform.celery import BEAT_MODULES, app

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_beat_module_exists_and_declares_a_schedule():
    for name in BEAT_MODULES:
        module = importlib.import_module(name)  # a missing module raises here, as at worker start
        assert getattr(module, "BEAT_SCHEDULE", None), f"{name} declares no BEAT_SCHEDULE"


def test_every_tasks_module_with_a_schedule_is_listed():
    declaring = {f"apps.{p.parent.name}.tasks" for p in ROOT.glob("apps/*/tasks.py")
                 if "BEAT_SCHEDULE" in p.read_text()}
    assert declaring == set(BEAT_MODULES)


def test_the_collected_schedule_holds_every_module_entry():
    app.loader.import_default_modules()
    app.finalize()
    for name in BEAT_MODULES:
        for key in importlib.import_module(name).BEAT_SCHEDULE:
            assert key in app.conf.beat_schedule
