"""PDS periods: weeknights, weekends, public holidays, Alsace-Moselle, daylight-saving nights."""

import datetime as dt

import pytest

from apps.regions.calendar import (
    HOLIDAY,
    PARIS,
    WEEKEND,
    WEEKNIGHT,
    CalendarSpec,
    finess_department,
    holiday_subdivision,
    pds_kind_at,
    pds_periods,
)

SPEC = CalendarSpec()
AM = CalendarSpec(department="57")


def paris(y, m, d, hh, mm=0):
    return dt.datetime(y, m, d, hh, mm, tzinfo=PARIS)


@pytest.mark.parametrize("when,expected", [
    (paris(2026, 11, 24, 10), None),            # Tuesday morning: regular hours
    (paris(2026, 11, 24, 18, 29), None),        # one minute before the night
    (paris(2026, 11, 24, 18, 30), WEEKNIGHT),   # Tuesday night starts
    (paris(2026, 11, 25, 3), WEEKNIGHT),        # deep night
    (paris(2026, 11, 25, 8, 29), WEEKNIGHT),
    (paris(2026, 11, 25, 8, 30), None),         # morning: back to regular hours
    (paris(2026, 11, 28, 11, 59), None),        # Saturday morning
    (paris(2026, 11, 28, 12, 0), WEEKEND),      # Saturday afternoon
    (paris(2026, 11, 29, 15), WEEKEND),         # Sunday
    (paris(2026, 11, 30, 7), WEEKEND),          # Monday before 08:30 still belongs to Sunday night
    (paris(2026, 11, 30, 9), None),             # Monday day
    (paris(2026, 11, 11, 14), HOLIDAY),         # Armistice, a Wednesday
    (paris(2026, 11, 12, 6), HOLIDAY),          # the night after a holiday
    (paris(2026, 12, 25, 10), HOLIDAY),         # Christmas
    (paris(2026, 12, 26, 10), None),            # 26 Dec (Saturday morning) not a holiday outside Alsace-Moselle
    (paris(2026, 4, 3, 10), None),              # Good Friday outside Alsace-Moselle
])
def test_pds_kind_at(when, expected):
    assert pds_kind_at(when, SPEC) == expected


def test_alsace_moselle_extra_days():
    assert pds_kind_at(paris(2026, 4, 3, 10), AM) == HOLIDAY
    assert pds_kind_at(paris(2026, 12, 26, 10), AM) == HOLIDAY


@pytest.mark.parametrize("department,local_law", [
    ("57", True), ("67", True), ("68", True),        # Moselle, Bas-Rhin, Haut-Rhin
    ("54", False), ("88", False), ("51", False),     # Grand Est departments under the national calendar
    ("18", False), ("2A", False), ("", False),
])
def test_good_friday_and_26_december_follow_the_department(department, local_law):
    spec = CalendarSpec(department=department)
    expected = HOLIDAY if local_law else None
    assert pds_kind_at(paris(2026, 4, 3, 10), spec) == expected          # Good Friday, a Friday morning
    assert pds_kind_at(paris(2027, 12, 26, 10), spec) == (HOLIDAY if local_law else WEEKEND)  # a Sunday in 2027
    assert pds_kind_at(paris(2026, 4, 2, 20), spec) == WEEKNIGHT         # Maundy Thursday night: nothing changes
    # The night before Good Friday ends as a weeknight; the night of Good Friday is a holiday night there.
    assert pds_kind_at(paris(2026, 4, 3, 20), spec) == (HOLIDAY if local_law else WEEKNIGHT)


@pytest.mark.parametrize("department,subdivision", [
    ("57", "57"), ("67", "6AE"), ("68", "6AE"), ("54", None), ("971", "971"), ("2B", None), ("", None)])
def test_holiday_subdivision(department, subdivision):
    assert holiday_subdivision(department) == subdivision


@pytest.mark.parametrize("finess,department", [
    ("670780055", "67"), ("570000000", "57"), ("2A0000000", "2A"), ("971000000", "971"), ("371043324", "37")])
def test_finess_department(finess, department):
    assert finess_department(finess) == department


def test_regional_extra_closed_day():
    spec = CalendarSpec(extra_closed_days=frozenset({dt.date(2026, 11, 24)}))
    assert pds_kind_at(paris(2026, 11, 24, 10), spec) == HOLIDAY


def test_utc_input_is_evaluated_in_paris_time():
    # 17:45 UTC in winter is 18:45 in Paris: already night.
    assert pds_kind_at(dt.datetime(2026, 11, 24, 17, 45, tzinfo=dt.UTC), SPEC) == WEEKNIGHT
    # 17:45 UTC in summer is 19:45 in Paris.
    assert pds_kind_at(dt.datetime(2026, 6, 23, 16, 45, tzinfo=dt.UTC), SPEC) == WEEKNIGHT
    assert pds_kind_at(dt.datetime(2026, 6, 23, 16, 15, tzinfo=dt.UTC), SPEC) is None


def test_naive_datetime_refused():
    with pytest.raises(ValueError):
        pds_kind_at(dt.datetime(2026, 1, 1, 12), SPEC)


def test_daylight_saving_nights_have_true_length():
    # Spring forward: Saturday 28 -> Sunday 29 March 2026 loses an hour.
    spring = [p for p in pds_periods(dt.date(2026, 3, 28), dt.date(2026, 3, 28), SPEC) if p.label.endswith("night")][0]
    assert (spring.end - spring.start) == dt.timedelta(hours=13)
    # Fall back: Saturday 24 -> Sunday 25 October 2026 gains an hour.
    autumn = [p for p in pds_periods(dt.date(2026, 10, 24), dt.date(2026, 10, 24), SPEC) if p.label.endswith("night")][0]
    assert (autumn.end - autumn.start) == dt.timedelta(hours=15)
    # During the repeated hour (02:30 happens twice) it is still PDS.
    assert pds_kind_at(dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC), SPEC) == WEEKEND
    assert pds_kind_at(dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC), SPEC) == WEEKEND


def test_week_periods_cover_every_pds_instant():
    periods = pds_periods(dt.date(2026, 11, 23), dt.date(2026, 11, 29), SPEC)
    kinds = [(p.label, p.kind) for p in periods]
    assert ("Sat 28/11 afternoon", WEEKEND) in kinds
    assert ("Sun 29/11 day", WEEKEND) in kinds
    assert sum(1 for p in periods if p.label.endswith("night")) == 7
    # Every hour of the week that is PDS lies in exactly one period, and no regular hour does.
    t = dt.datetime(2026, 11, 23, 9, tzinfo=PARIS)
    while t < dt.datetime(2026, 11, 30, 8, tzinfo=PARIS):
        inside = [p for p in periods if p.start <= t < p.end]
        assert len(inside) == (1 if pds_kind_at(t, SPEC) else 0), t
        t += dt.timedelta(minutes=30)
