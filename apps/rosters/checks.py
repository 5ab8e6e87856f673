"""Roster checks (DOMAIN.md, rest and load) as pure functions over frozen dataclasses.

Work: an on-site garde, remote reading duty and a recorded astreinte
intervention (travel and intervention time) are work; an at-home astreinte
without intervention is not. Rest: an on-site garde, a *night* of remote
reading (one that includes work between 00:00 and 05:00 Paris time, the core
of night work in French labour law) and an astreinte intervention are each
followed by at least 11 hours of rest; no one works more than 24 hours in a
row. Load: a radiologist holds at most the region's monthly number of on-calls
(gardes, astreintes and nights of remote reading, counted in the Paris month of
their start); over 60 only as a volunteer; a line's radiologist must be
authorised for every site it serves; shifts of one radiologist never overlap.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from apps.regions.calendar import PARIS

REST_AFTER_GARDE = dt.timedelta(hours=11)
MAX_CONTINUOUS = dt.timedelta(hours=24)
ON_CALL_KINDS = frozenset({"garde", "astreinte"})
INTERVENTION = "intervention"  # an astreinte intervention, recorded after the fact: work, never rostered
WORK_KINDS = frozenset({"garde", "remote", INTERVENTION})
NIGHT_CORE = (dt.time(0, 0), dt.time(5, 0))


@dataclass(frozen=True)
class ShiftFacts:
    start: dt.datetime
    end: dt.datetime
    kind: str  # garde | astreinte | remote | intervention
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


def is_night(s: ShiftFacts) -> bool:
    """Whether the shift includes work between 00:00 and 05:00 Paris time on some day."""
    day = s.start.astimezone(PARIS).date() - dt.timedelta(days=1)
    while day <= s.end.astimezone(PARIS).date():
        lo = dt.datetime.combine(day, NIGHT_CORE[0], tzinfo=PARIS)
        hi = dt.datetime.combine(day, NIGHT_CORE[1], tzinfo=PARIS)
        if s.start < hi and lo < s.end:
            return True
        day += dt.timedelta(days=1)
    return False


def needs_rest_after(s: ShiftFacts) -> bool:
    """An on-site garde, a night of remote reading, an astreinte intervention: 11 hours of rest after it."""
    return s.kind in ("garde", INTERVENTION) or (s.kind == "remote" and is_night(s))


def counts_as_on_call(s: ShiftFacts) -> bool:
    """Counted toward the monthly cap: gardes, astreintes and nights of remote reading."""
    return s.kind in ON_CALL_KINDS or (s.kind == "remote" and is_night(s))


def _what(s: ShiftFacts) -> str:
    return {"garde": "garde", INTERVENTION: "astreinte intervention"}.get(s.kind, "night of remote reading")


def check_overlap(new: ShiftFacts, others: list[ShiftFacts]) -> list[Violation]:
    # An intervention lies within its own astreinte: it is work to rest after, not a shift that overlaps.
    return [Violation("overlap", f"Overlaps another shift ({_fmt(o.start)} – {_fmt(o.end)}).")
            for o in others if o.kind != INTERVENTION and o.start < new.end and new.start < o.end]


def check_rest_after_garde(new: ShiftFacts, others: list[ShiftFacts]) -> list[Violation]:
    out = []
    for o in others:
        if needs_rest_after(o) and o.end <= new.start and new.start - o.end < REST_AFTER_GARDE:
            out.append(Violation("rest", f"Only {_hours(new.start - o.end)} of rest after the {_what(o)} ending "
                                         f"{_fmt(o.end)}: 11 hours are required."))
        if (needs_rest_after(new) and o.kind != INTERVENTION and new.end <= o.start
                and o.start - new.end < REST_AFTER_GARDE):
            out.append(Violation("rest", f"This {_what(new)} leaves only {_hours(o.start - new.end)} of rest before "
                                         f"the shift starting {_fmt(o.start)}: 11 hours are required."))
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
    if not counts_as_on_call(new):
        return []
    local = new.start.astimezone(PARIS)
    month = (local.year, local.month)
    same = [o for o in others if counts_as_on_call(o)
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
