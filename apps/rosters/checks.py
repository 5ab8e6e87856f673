"""Roster checks (DOMAIN.md, rest and load) as pure functions over frozen dataclasses.

An on-site garde is work time in full and must be followed by 11 hours of
rest; no one works more than 24 hours in a row (gardes and remote reading
duty count as work, an at-home astreinte does not); a radiologist holds at
most the region's monthly number of on-calls (gardes and astreintes, counted
in the Paris month of their start); over 60 only as a volunteer; a line's
radiologist must be authorised for every site it serves; shifts of one
radiologist never overlap.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from apps.regions.calendar import PARIS

REST_AFTER_GARDE = dt.timedelta(hours=11)
MAX_CONTINUOUS = dt.timedelta(hours=24)
ON_CALL_KINDS = frozenset({"garde", "astreinte"})
WORK_KINDS = frozenset({"garde", "remote"})


@dataclass(frozen=True)
class ShiftFacts:
    start: dt.datetime
    end: dt.datetime
    kind: str  # garde | astreinte | remote
    line_id: int = 0
    shift_id: int | None = None


@dataclass(frozen=True)
class RadiologistFacts:
    radiologist_id: int
    name: str
    birth_date: dt.date | None
    volunteers_over_60: bool
    authorised_site_ids: frozenset[int]


@dataclass(frozen=True)
class Violation:
    code: str
    message: str


def _fmt(t: dt.datetime) -> str:
    return t.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


def _age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def check_overlap(new: ShiftFacts, others: list[ShiftFacts]) -> list[Violation]:
    return [Violation("overlap", f"Overlaps another shift ({_fmt(o.start)} – {_fmt(o.end)}).")
            for o in others if o.start < new.end and new.start < o.end]


def check_rest_after_garde(new: ShiftFacts, others: list[ShiftFacts]) -> list[Violation]:
    out = []
    for o in others:
        if o.kind == "garde" and o.end <= new.start and new.start - o.end < REST_AFTER_GARDE:
            out.append(Violation("rest", f"Only {_hours(new.start - o.end)} of rest after the garde ending "
                                         f"{_fmt(o.end)}: 11 hours are required."))
        if new.kind == "garde" and new.end <= o.start and o.start - new.end < REST_AFTER_GARDE:
            out.append(Violation("rest", f"This garde leaves only {_hours(o.start - new.end)} of rest before the "
                                         f"shift starting {_fmt(o.start)}: 11 hours are required."))
    return out


def _hours(d: dt.timedelta) -> str:
    h = d.total_seconds() / 3600
    return f"{h:.1f} h".replace(".0 h", " h")


def check_continuous_work(new: ShiftFacts, others: list[ShiftFacts]) -> list[Violation]:
    """Work shifts that touch or overlap the new one form one continuous block; it must not exceed 24 h."""
    if new.kind not in WORK_KINDS:
        return []
    work = sorted([o for o in others if o.kind in WORK_KINDS], key=lambda s: s.start)
    start, end = new.start, new.end
    changed = True
    while changed:
        changed = False
        for o in work:
            if o.start <= end and o.end >= start and (o.start < start or o.end > end):
                start, end = min(start, o.start), max(end, o.end)
                changed = True
    if end - start > MAX_CONTINUOUS:
        return [Violation("continuous", f"{_hours(end - start)} of continuous work from {_fmt(start)} to "
                                        f"{_fmt(end)}: at most 24 hours.")]
    return []


def check_monthly_limit(new: ShiftFacts, others: list[ShiftFacts], max_per_month: int) -> list[Violation]:
    if new.kind not in ON_CALL_KINDS:
        return []
    local = new.start.astimezone(PARIS)
    month = (local.year, local.month)
    same = [o for o in others if o.kind in ON_CALL_KINDS
            and (o.start.astimezone(PARIS).year, o.start.astimezone(PARIS).month) == month]
    if len(same) + 1 > max_per_month:
        return [Violation("monthly_limit", f"{len(same) + 1} on-calls in {local:%m/%Y}: the region's limit is "
                                           f"{max_per_month} per month.")]
    return []


def check_over_60(new: ShiftFacts, who: RadiologistFacts) -> list[Violation]:
    if who.birth_date is None:
        return []
    age = _age_on(who.birth_date, new.start.astimezone(PARIS).date())
    if age >= 60 and not who.volunteers_over_60:
        return [Violation("over_60", f"{who.name} is {age} and has not volunteered for on-call after 60.")]
    return []


def check_authorised(who: RadiologistFacts, served_sites: dict[int, str]) -> list[Violation]:
    missing = [name for pk, name in sorted(served_sites.items(), key=lambda x: x[1])
               if pk not in who.authorised_site_ids]
    if missing:
        return [Violation("not_authorised", f"{who.name} is not authorised to read for: {', '.join(missing)}.")]
    return []


def check_shift(new: ShiftFacts, who: RadiologistFacts, *, others: list[ShiftFacts], served_sites: dict[int, str],
                max_per_month: int) -> list[Violation]:
    """Every violation of the new shift against the radiologist's other shifts (empty: acceptable)."""
    others = [o for o in others if new.shift_id is None or o.shift_id != new.shift_id]
    return (check_overlap(new, others) + check_rest_after_garde(new, others) + check_continuous_work(new, others)
            + check_monthly_limit(new, others, max_per_month) + check_over_60(new, who)
            + check_authorised(who, served_sites))
