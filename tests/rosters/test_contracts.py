"""A private provider's contracted hours (issue 18, point 14), pure: open at an instant, and the stretches of a
PDS period it covers (DST nights included); they may differ from the region's PDS window."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.rosters.contracts import ContractHours, contract_open, contract_spans
from tests.factories.mesh import paris

NIGHTS = ContractHours(dt.time(18, 0), dt.time(8, 0), weekends=True, holidays=True)
LATE_ONLY = ContractHours(dt.time(20, 0), dt.time(8, 0), weekends=False, holidays=False)
EVENINGS = ContractHours(dt.time(18, 0), dt.time(23, 0), weekends=False, holidays=False)
WEDNESDAY = (2026, 12, 2)


@pytest.mark.parametrize("hours,at,holiday,expected", [
    (NIGHTS, paris(*WEDNESDAY, 17, 59), False, False),
    (NIGHTS, paris(*WEDNESDAY, 18, 0), False, True),     # before the region's 18:30: the contract says 18:00
    (NIGHTS, paris(*WEDNESDAY, 7, 59), False, True),     # the morning after
    (NIGHTS, paris(*WEDNESDAY, 8, 0), False, False),
    (NIGHTS, paris(*WEDNESDAY, 12, 0), True, True),      # a public holiday, around the clock
    (NIGHTS, paris(2026, 12, 5, 12, 0), False, True),    # Saturday noon
    (LATE_ONLY, paris(*WEDNESDAY, 19, 0), False, False),
    (LATE_ONLY, paris(*WEDNESDAY, 23, 30), False, True),
    (LATE_ONLY, paris(2026, 12, 5, 12, 0), False, False),  # no weekend days in this contract
    (LATE_ONLY, paris(*WEDNESDAY, 12, 0), True, False),    # nor holidays
    (EVENINGS, paris(*WEDNESDAY, 22, 59), False, True),    # a window that does not cross midnight
    (EVENINGS, paris(*WEDNESDAY, 23, 0), False, False),
    (EVENINGS, paris(*WEDNESDAY, 2, 0), False, False),
])
def test_contract_open(hours, at, holiday, expected):
    holidays = frozenset({at.date()}) if holiday else frozenset()
    assert contract_open(hours, at.astimezone(dt.UTC), holidays=holidays) is expected


def test_spans_of_a_weeknight_differ_from_the_region_window():
    # The region's night 18:30-08:30; a 20:00-08:00 contract leaves 18:30-20:00 and 08:00-08:30 uncovered.
    spans = contract_spans(LATE_ONLY, paris(*WEDNESDAY, 18, 30), paris(2026, 12, 3, 8, 30))
    assert spans == [(paris(*WEDNESDAY, 20, 0), paris(2026, 12, 3, 8, 0))]


def test_spans_of_a_weekend_are_whole_days_and_merge_with_the_nights():
    spans = contract_spans(NIGHTS, paris(2026, 12, 4, 18, 30), paris(2026, 12, 7, 8, 30))
    assert spans == [(paris(2026, 12, 4, 18, 30), paris(2026, 12, 7, 8, 0))]


def test_spans_across_the_autumn_dst_night_are_wall_clock():
    # 24-25 October 2026 (Saturday to Sunday): clocks go back at 03:00; 18:00-08:00 local is 15 hours.
    start, end = paris(2026, 10, 21, 18, 0), paris(2026, 10, 22, 8, 0)  # an ordinary Wednesday night
    assert contract_spans(LATE_ONLY, start, end) == [(paris(2026, 10, 21, 20, 0), end)]
    night = contract_spans(ContractHours(dt.time(18, 0), dt.time(8, 0), False, False),
                           paris(2026, 10, 24, 18, 0), paris(2026, 10, 25, 8, 0))
    # (aware datetimes sharing one tzinfo subtract as wall-clock times: compare in UTC)
    assert [(e.astimezone(dt.UTC) - s.astimezone(dt.UTC)).total_seconds() / 3600 for s, e in night] == [15.0]
