"""The users' clock, Europe/Paris: the one zone time is shown in and rosters, periods and days are evaluated in."""

from __future__ import annotations

from zoneinfo import ZoneInfo

# Storage stays UTC (settings.USE_TZ); this is the only place the zone is named in code.
PARIS = ZoneInfo("Europe/Paris")
