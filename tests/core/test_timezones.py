"""One home for the users' zone (apps.core.timezones.PARIS): no other module builds its own."""

from __future__ import annotations

import pathlib
import re

from apps.core.timezones import PARIS
from apps.regions.calendar import PARIS as CALENDAR_PARIS

ROOT = pathlib.Path(__file__).resolve().parents[2]
ZONE_BUILT = re.compile(r"""(ZoneInfo|gettz|timezone)\(\s*["']Europe/Paris["']""")


def test_europe_paris_is_built_in_apps_core_only():
    offenders = [str(p.relative_to(ROOT)) for folder in ("apps", "dicom_gateway", "benchmarks")
                 for p in (ROOT / folder).rglob("*.py")
                 if ZONE_BUILT.search(p.read_text()) and p != ROOT / "apps/core/timezones.py"]
    assert offenders == []


def test_the_calendar_evaluates_in_the_same_zone():
    assert CALENDAR_PARIS is PARIS and PARIS.key == "Europe/Paris"
