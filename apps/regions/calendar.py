"""The PDS calendar as pure functions over a frozen spec: nights, weekends, public holidays.

All evaluation is in Europe/Paris wall-clock time (zoneinfo), so a night that
crosses a daylight-saving change is 13 or 15 hours long, not 14. Inputs and
outputs that are instants are aware datetimes; any timezone is accepted.

Public holidays depend on the establishment's department, not on its region:
Good Friday and 26 December are holidays in Moselle (57), Bas-Rhin (67) and
Haut-Rhin (68) only, and Grand Est mixes those with departments that keep the
national calendar. A spec therefore carries the department it is evaluated for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache

import holidays

from apps.core.timezones import PARIS

WEEKNIGHT = "weeknight"
WEEKEND = "weekend"
HOLIDAY = "holiday"
PERIOD_KINDS = (WEEKNIGHT, WEEKEND, HOLIDAY)
# Local law of Alsace-Moselle: the holidays library names Moselle "57" and the European Collectivity of
# Alsace (Bas-Rhin and Haut-Rhin) "6AE"; both add Good Friday and 26 December.
ALSACE_MOSELLE_SUBDIVISIONS = {"57": "57", "67": "6AE", "68": "6AE"}


def holiday_subdivision(department: str) -> str | None:
    """The ``holidays.France`` subdivision whose calendar applies in ``department`` (None: the national one).
    Overseas departments (971...) are subdivisions of the library under their own code."""
    code = (department or "").strip().upper()
    if code in ALSACE_MOSELLE_SUBDIVISIONS:
        return ALSACE_MOSELLE_SUBDIVISIONS[code]
    return code if code.startswith("97") and code in holidays.France.subdivisions else None


def finess_department(finess: str) -> str:
    """The department a FINESS number was registered in: its first two characters (2A/2B for Corsica), three
    for overseas departments (971 Guadeloupe ... 976 Mayotte)."""
    finess = (finess or "").strip().upper()
    return finess[:3] if finess[:2] in ("97", "98") else finess[:2]


@dataclass(frozen=True)
class CalendarSpec:
    weekday_night_start: dt.time = dt.time(18, 30)
    weekday_night_end: dt.time = dt.time(8, 30)
    saturday_start: dt.time = dt.time(12, 0)
    department: str = ""  # INSEE code of the establishment's department (57, 67, 2A, 971...); "" = national
    extra_closed_days: frozenset[dt.date] = field(default_factory=frozenset)


@dataclass(frozen=True)
class PdsPeriod:
    start: dt.datetime  # aware, UTC
    end: dt.datetime
    kind: str
    label: str


@lru_cache(maxsize=64)
def _french_holidays(year: int, subdivision: str | None) -> dict[dt.date, str]:
    return dict(holidays.France(years=year, subdiv=subdivision))


def holiday_name(day: dt.date, spec: CalendarSpec) -> str | None:
    if day in spec.extra_closed_days:
        return "regional holiday"
    return _french_holidays(day.year, holiday_subdivision(spec.department)).get(day)


def day_kind(day: dt.date, spec: CalendarSpec) -> str | None:
    """The kind of on-call a whole day carries: holiday, weekend (Sunday) or None."""
    if holiday_name(day, spec):
        return HOLIDAY
    if day.weekday() == 6:
        return WEEKEND
    return None


def _local(day: dt.date, t: dt.time) -> dt.datetime:
    # Stored in UTC: subtracting two aware datetimes that share a zoneinfo gives wall-clock time, not elapsed time.
    return dt.datetime.combine(day, t).replace(tzinfo=PARIS).astimezone(dt.UTC)


def _night_kind(day: dt.date, spec: CalendarSpec) -> str:
    """Kind of the night that starts on ``day`` in the evening."""
    if holiday_name(day, spec):
        return HOLIDAY
    if day.weekday() in (5, 6):
        return WEEKEND
    return WEEKNIGHT


def pds_kind_at(instant: dt.datetime, spec: CalendarSpec) -> str | None:
    """The PDS period kind at ``instant`` (weeknight/weekend/holiday) or None during regular hours."""
    if instant.tzinfo is None:
        raise ValueError("pds_kind_at needs an aware datetime")
    local = instant.astimezone(PARIS)
    day, t = local.date(), local.time()
    if t < spec.weekday_night_end:
        return _night_kind(day - dt.timedelta(days=1), spec)
    whole_day = day_kind(day, spec)
    if whole_day:
        return whole_day
    if day.weekday() == 5 and t >= spec.saturday_start:
        return WEEKEND
    if t >= spec.weekday_night_start:
        return _night_kind(day, spec)
    return None


def is_pds(instant: dt.datetime, spec: CalendarSpec) -> bool:
    return pds_kind_at(instant, spec) is not None


def pds_periods(first_day: dt.date, last_day: dt.date, spec: CalendarSpec) -> list[PdsPeriod]:
    """Every PDS segment that starts between ``first_day`` and ``last_day`` inclusive, in order.

    A day yields at most a daytime segment (holiday, Sunday, Saturday afternoon)
    and a night segment; the coverage report checks each segment separately.
    """
    periods: list[PdsPeriod] = []
    day = first_day
    while day <= last_day:
        whole = day_kind(day, spec)
        if whole:
            periods.append(PdsPeriod(_local(day, spec.weekday_night_end), _local(day, spec.weekday_night_start),
                                     whole, f"{day:%a %d/%m} day"))
        elif day.weekday() == 5:
            periods.append(PdsPeriod(_local(day, spec.saturday_start), _local(day, spec.weekday_night_start),
                                     WEEKEND, f"{day:%a %d/%m} afternoon"))
        periods.append(PdsPeriod(_local(day, spec.weekday_night_start),
                                 _local(day + dt.timedelta(days=1), spec.weekday_night_end),
                                 _night_kind(day, spec), f"{day:%a %d/%m} night"))
        day += dt.timedelta(days=1)
    return periods
