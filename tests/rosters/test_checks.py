"""Roster checks: tables of cases, no database."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.regions.calendar import PARIS
from apps.rosters.checks import RadiologistFacts, ShiftFacts, check_shift


def t(day: int, hour: int, minute: int = 0, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=PARIS)


ALICE = RadiologistFacts(1, "Dr Alice", dt.date(1975, 5, 1), False, frozenset({10, 11}))
SENIOR = RadiologistFacts(2, "Dr Senior", dt.date(1960, 1, 1), False, frozenset({10, 11}))
SENIOR_VOLUNTEER = RadiologistFacts(3, "Dr Volunteer", dt.date(1960, 1, 1), True, frozenset({10, 11}))
SERVED = {10: "CH Vierzon", 11: "CH Blois"}

NIGHT_GARDE = ShiftFacts(t(10, 18, 30), t(11, 8, 30), "garde")

CASES = [
    # (label, new shift, who, others, served, expected codes)
    ("clean garde", NIGHT_GARDE, ALICE, [], SERVED, []),
    ("overlap", ShiftFacts(t(10, 20), t(10, 23), "astreinte"), ALICE, [NIGHT_GARDE], SERVED, ["overlap"]),
    ("10 h rest after a garde", ShiftFacts(t(11, 18, 30), t(11, 22), "remote"), ALICE, [NIGHT_GARDE], SERVED,
     ["rest"]),
    ("11 h rest after a garde is enough", ShiftFacts(t(11, 19, 30), t(11, 23), "remote"), ALICE, [NIGHT_GARDE],
     SERVED, []),
    ("garde before a shift leaves too little rest", ShiftFacts(t(9, 18, 30), t(10, 8, 30), "garde"), ALICE,
     [ShiftFacts(t(10, 14), t(10, 18), "remote")], SERVED, ["rest"]),
    ("astreinte needs no 11 h rest", ShiftFacts(t(11, 12), t(11, 18), "remote"), ALICE,
     [ShiftFacts(t(10, 18, 30), t(11, 8, 30), "astreinte")], SERVED, []),
    ("day + garde = 24 h is allowed", ShiftFacts(t(10, 8, 30), t(10, 18, 30), "remote"), ALICE, [NIGHT_GARDE],
     SERVED, []),
    ("more than 24 h continuous", ShiftFacts(t(10, 6), t(10, 18, 30), "remote"), ALICE, [NIGHT_GARDE], SERVED,
     ["continuous"]),
    ("monthly limit", ShiftFacts(t(28, 18, 30), t(29, 8, 30), "astreinte"), ALICE,
     [ShiftFacts(t(d, 18, 30), t(d + 1, 8, 30), "astreinte") for d in (1, 4, 7, 13, 16, 19)], SERVED,
     ["monthly_limit"]),
    ("limit counts the Paris month of the start", ShiftFacts(t(1, 18, 30, month=12), t(2, 8, 30, month=12),
                                                             "astreinte"), ALICE,
     [ShiftFacts(t(d, 18, 30), t(d + 1, 8, 30), "astreinte") for d in (1, 4, 7, 13, 16, 19)], SERVED, []),
    ("remote duty is not an on-call", ShiftFacts(t(28, 9), t(28, 17), "remote"), ALICE,
     [ShiftFacts(t(d, 18, 30), t(d + 1, 8, 30), "astreinte") for d in (1, 4, 7, 13, 16, 19)], SERVED, []),
    ("over 60 not volunteering", NIGHT_GARDE, SENIOR, [], SERVED, ["over_60"]),
    ("over 60 volunteering", NIGHT_GARDE, SENIOR_VOLUNTEER, [], SERVED, []),
    ("not authorised for a served site", NIGHT_GARDE, ALICE, [], {**SERVED, 12: "CH Dreux"}, ["not_authorised"]),
]


@pytest.mark.parametrize("label,new,who,others,served,expected", CASES, ids=[c[0] for c in CASES])
def test_roster_checks(label, new, who, others, served, expected):
    violations = check_shift(new, who, others=others, served_sites=served, max_per_month=6)
    assert [v.code for v in violations] == expected
    assert all(v.message for v in violations)


def test_messages_are_clear():
    [v] = check_shift(ShiftFacts(t(11, 18, 30), t(11, 22), "remote"), ALICE, others=[NIGHT_GARDE],
                      served_sites=SERVED, max_per_month=6)
    assert "10 h of rest" in v.message and "11 hours" in v.message
    [v] = check_shift(NIGHT_GARDE, ALICE, others=[], served_sites={**SERVED, 12: "CH Dreux"}, max_per_month=6)
    assert "CH Dreux" in v.message
    [v] = check_shift(NIGHT_GARDE, SENIOR, others=[], served_sites=SERVED, max_per_month=6)
    assert "66" in v.message and "volunteer" in v.message


REMOTE_NIGHT = ShiftFacts(t(10, 18, 30), t(11, 8, 30), "remote")
ASTREINTE = ShiftFacts(t(10, 18, 30), t(11, 8, 30), "astreinte")
INTERVENTION_2H = ShiftFacts(t(11, 2), t(11, 4), "intervention")

# Issue 18, point 4: remote nights and astreinte interventions are work, with rest after them.
REST_CASES = [
    ("garde 8 h after a remote night", ShiftFacts(t(11, 16, 30), t(12, 8, 30), "garde"), [REMOTE_NIGHT], ["rest"]),
    ("a remote night 8 h before a garde", REMOTE_NIGHT, [ShiftFacts(t(11, 16, 30), t(12, 8, 30), "garde")],
     ["rest"]),
    ("11 h after a remote night is enough", ShiftFacts(t(11, 19, 30), t(12, 8, 30), "garde"), [REMOTE_NIGHT], []),
    ("a remote evening is not a night", ShiftFacts(t(11, 8, 30), t(11, 18, 30), "garde"),
     [ShiftFacts(t(10, 18, 30), t(10, 23, 30), "remote")], []),
    ("day after an astreinte intervention", ShiftFacts(t(11, 8, 30), t(11, 18, 30), "remote"),
     [ASTREINTE, INTERVENTION_2H], ["rest"]),
    ("day after an astreinte with no intervention", ShiftFacts(t(11, 8, 30), t(11, 18, 30), "remote"),
     [ASTREINTE], []),
    ("the astreinte itself is not overlapped by its intervention", ASTREINTE, [INTERVENTION_2H], []),
    ("an intervention counts toward 24 h of work", ShiftFacts(t(10, 3), t(11, 2), "garde"),
     [INTERVENTION_2H], ["continuous"]),
    ("12 remote nights a month", ShiftFacts(t(28, 18, 30), t(29, 8, 30), "remote"),
     [ShiftFacts(t(d, 18, 30), t(d + 1, 8, 30), "remote") for d in (1, 4, 7, 13, 16, 19)], ["monthly_limit"]),
    ("remote nights and astreintes share the cap", ShiftFacts(t(28, 18, 30), t(29, 8, 30), "astreinte"),
     [ShiftFacts(t(d, 18, 30), t(d + 1, 8, 30), "remote") for d in (1, 4, 7)]
     + [ShiftFacts(t(d, 18, 30), t(d + 1, 8, 30), "garde") for d in (13, 16, 19)], ["monthly_limit"]),
]


@pytest.mark.parametrize("label,new,others,expected", REST_CASES, ids=[c[0] for c in REST_CASES])
def test_rest_after_remote_nights_and_interventions(label, new, others, expected):
    violations = check_shift(new, ALICE, others=others, served_sites=SERVED, max_per_month=6)
    assert [v.code for v in violations] == expected


def test_rest_messages_name_what_needs_rest():
    [v] = check_shift(ShiftFacts(t(11, 16, 30), t(12, 8, 30), "garde"), ALICE, others=[REMOTE_NIGHT],
                      served_sites=SERVED, max_per_month=6)
    assert "night of remote reading" in v.message and "8 h of rest" in v.message
    [v] = check_shift(ShiftFacts(t(11, 8, 30), t(11, 18, 30), "remote"), ALICE,
                      others=[ASTREINTE, INTERVENTION_2H], served_sites=SERVED, max_per_month=6)
    assert "astreinte intervention" in v.message
