"""Routing decisions as pure functions: tables of cases, no database."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.regions.calendar import PARIS, CalendarSpec, pds_kind_at, pds_periods
from apps.routing.rules import (
    ASSIGNED,
    COORDINATOR,
    REFUSED,
    Candidate,
    CaseFacts,
    RuleFacts,
    TargetFacts,
    decide,
    match_rule,
)

SPEC = CalendarSpec()
VIERZON, BLOIS = 10, 11
SOUTH_ZONE = 1
POOL, PROVIDER, PIVOT, SITE_LINE, NEURO = 100, 200, 300, 400, 500


def paris(y, m, d, hh, mm=0):
    return dt.datetime(y, m, d, hh, mm, tzinfo=PARIS)


def kind(at):
    return pds_kind_at(at, SPEC) or "day"


def target(line_id, kind_, name=None, **kw):
    return TargetFacts(line_id, name or f"line{line_id}", kind_, serves_site=kw.get("serves", True),
                       covers_modality=kw.get("covers", True), agreement=kw.get("agreement", True),
                       overflow_threshold=kw.get("threshold"))


def case(modality="CT", at=None, urgency="urgent", site=VIERZON, eligible=True, sub=""):
    return CaseFacts(1, site, frozenset({SOUTH_ZONE}), modality, eligible, urgency,
                     kind(at or paris(2026, 11, 24, 2)), sub)


PDS = frozenset({"weeknight", "weekend", "holiday"})
ALL = PDS | {"day"}

# Scheme 1: a radiologist of another establishment (pivot) reads for the site.
PIVOT_RULE = RuleFacts(1, "Vierzon → pivot Bourges", "site", VIERZON, None, frozenset({"CT", "MR", "XR"}), ALL,
                       (target(PIVOT, "pivot"),), priority=10)
# Scheme 2: a private provider reads all CT during PDS.
PROVIDER_RULE = RuleFacts(2, "Blois CT → provider", "site", BLOIS, None, frozenset({"CT"}), PDS,
                          (target(PROVIDER, "provider"),))
# Scheme 3: a pooled line serving all sites of the zone, provider as overflow and next target.
POOL_RULE = RuleFacts(3, "South zone → pool", "zone", None, SOUTH_ZONE, frozenset({"CT", "MR", "XR"}), ALL,
                      (target(POOL, "pooled", threshold=4.0), target(PROVIDER, "provider", covers=True)),
                      delays_minutes=(5, 15, 60))
RULES = [PIVOT_RULE, PROVIDER_RULE, POOL_RULE]


def duty(**lines):
    return {k: tuple(v) for k, v in lines.items()}


def c(rid, line, role="primary", load=0.0, subs=()):
    return Candidate(rid, f"Dr {rid}", line, role, load, frozenset(subs))


NIGHT_DUTY = {
    PIVOT: (c(1, PIVOT), c(2, PIVOT, "backup")),
    PROVIDER: (c(3, PROVIDER),),
    POOL: (c(4, POOL, load=2.0), c(5, POOL, load=1.0), c(6, POOL, "backup")),
}


@pytest.mark.parametrize("label,facts,expected_rule,expected_line", [
    ("scheme 1: pivot reads Vierzon at night (site rule wins over zone)", case(site=VIERZON), 1, PIVOT),
    ("scheme 2: provider reads Blois CT at night", case(site=BLOIS), 2, PROVIDER),
    ("scheme 3: pooled line reads a zone site at night", case(site=12), 3, POOL),
    ("provider rule is PDS only: Blois CT at 10:00 on a Tuesday falls to the zone", case(
        site=BLOIS, at=paris(2026, 11, 24, 10)), 3, POOL),
    ("Blois MR at night is not the provider's", case(site=BLOIS, modality="MR"), 3, POOL),
])
def test_a_night_on_each_scheme(label, facts, expected_rule, expected_line):
    rule = match_rule(facts, RULES)
    assert rule.rule_id == expected_rule
    d = decide(facts, rule, NIGHT_DUTY)
    assert d.outcome == ASSIGNED and d.line_id == expected_line and d.reasons


@pytest.mark.parametrize("at,expected", [
    (paris(2026, 11, 27, 18, 29), "day"),        # Friday before the night
    (paris(2026, 11, 27, 18, 30), "weeknight"),  # Friday night starts
    (paris(2026, 11, 28, 8, 29), "weeknight"),   # still Friday's night on Saturday morning
    (paris(2026, 11, 28, 11, 59), "day"),        # Saturday morning is regular hours
    (paris(2026, 11, 28, 12, 0), "weekend"),     # Saturday afternoon
    (paris(2026, 11, 29, 15, 0), "weekend"),     # Sunday
    (paris(2026, 11, 30, 8, 29), "weekend"),     # Sunday night ends Monday 08:30
    (paris(2026, 11, 30, 8, 30), "day"),         # Monday morning
    (paris(2026, 11, 11, 10, 0), "holiday"),     # 11 November (a Wednesday)
    (paris(2026, 12, 24, 20, 0), "weeknight"),   # Christmas Eve is not a holiday
    (paris(2026, 12, 25, 20, 0), "holiday"),     # Christmas night
])
def test_period_boundaries_pick_the_rule(at, expected):
    assert kind(at) == expected
    rule = match_rule(case(site=BLOIS, at=at), RULES)
    assert rule.rule_id == (3 if expected == "day" else 2)


def test_daylight_saving_night_is_covered_hour_by_hour():
    # Night of Saturday 24 to Sunday 25 October 2026: clocks go back at 03:00, the night lasts 15 hours.
    [night] = [p for p in pds_periods(dt.date(2026, 10, 24), dt.date(2026, 10, 24), SPEC) if "night" in p.label]
    assert night.end - night.start == dt.timedelta(hours=15)
    shift_start = dt.datetime.combine(dt.date(2026, 10, 24), dt.time(18, 30), tzinfo=PARIS).astimezone(dt.UTC)
    shift_end = dt.datetime.combine(dt.date(2026, 10, 25), dt.time(8, 30), tzinfo=PARIS).astimezone(dt.UTC)
    instant = night.start
    while instant < night.end:
        assert shift_start <= instant < shift_end
        facts = CaseFacts(1, 12, frozenset({SOUTH_ZONE}), "CT", True, "vital", kind(instant))
        assert facts.period_kind == "weekend"
        assert decide(facts, match_rule(facts, RULES), NIGHT_DUTY).line_id == POOL
        instant += dt.timedelta(minutes=30)


def test_least_load_and_subspecialty_preference():
    facts = case(site=12)
    assert decide(facts, POOL_RULE, NIGHT_DUTY).radiologist_id == 5  # load 1.0 < 2.0
    neuro_duty = {**NIGHT_DUTY, POOL: (c(4, POOL, load=2.0, subs=("neuro",)), c(5, POOL, load=1.0))}
    d = decide(case(site=12, sub="neuro"), POOL_RULE, neuro_duty)
    assert d.radiologist_id == 4 and "sub-specialty neuro" in d.reasons[-1]


def test_ultrasound_is_refused():
    d = decide(case(modality="US", eligible=False), POOL_RULE, NIGHT_DUTY)
    assert d.outcome == REFUSED and "ultrasound" in d.reasons[0] and d.radiologist_id is None


@pytest.mark.parametrize("loads,expected_line,overflowed", [
    ((2.0, 1.0), POOL, False),      # 1.5 per radiologist (backup 0) -> (2+1+0)/3 = 1.0
    ((9.0, 9.0), PROVIDER, True),   # (9+9+0)/3 = 6.0 > 4.0
    ((6.0, 6.0), POOL, False),      # exactly 4.0 is not past the threshold
])
def test_overflow_to_provider(loads, expected_line, overflowed):
    d_ = {**NIGHT_DUTY, POOL: (c(4, POOL, load=loads[0]), c(5, POOL, load=loads[1]), c(6, POOL, "backup"))}
    d = decide(case(site=12), POOL_RULE, d_)
    assert (d.line_id, d.overflowed) == (expected_line, overflowed)
    if overflowed:
        assert any("overflow" in r for r in d.reasons)


def test_overflow_without_provider_stays_on_pool():
    rule = RuleFacts(4, "MR pool", "zone", None, SOUTH_ZONE, frozenset({"MR"}), ALL,
                     (target(POOL, "pooled", threshold=1.0), target(PROVIDER, "provider", covers=False)))
    busy = {POOL: (c(4, POOL, load=9.0),), PROVIDER: (c(3, PROVIDER),)}
    d = decide(case(site=12, modality="MR"), rule, busy)
    assert d.line_id == POOL and not d.overflowed


def test_escalation_chain_to_the_coordinator():
    facts = case(site=12, urgency="vital")
    steps = [decide(facts, POOL_RULE, NIGHT_DUTY, level=n) for n in range(4)]
    assert [(s.outcome, s.line_id, s.radiologist_id) for s in steps] == [
        (ASSIGNED, POOL, 5), (ASSIGNED, POOL, 6), (ASSIGNED, PROVIDER, 3), (COORDINATOR, None, None)]
    assert steps[0].delay_minutes == 5 and "coordinator" in steps[3].reasons[-1]


def test_decline_excludes_the_radiologist():
    facts = case(site=12)
    assert decide(facts, POOL_RULE, NIGHT_DUTY, excluded=frozenset({5})).radiologist_id == 4
    assert decide(facts, POOL_RULE, NIGHT_DUTY, excluded=frozenset({4, 5})).radiologist_id == 6  # backup


def test_target_without_agreement_or_coverage_is_skipped():
    rule = RuleFacts(5, "no agreement", "zone", None, SOUTH_ZONE, frozenset({"CT"}), ALL,
                     (target(POOL, "pooled", agreement=False), target(PROVIDER, "provider")))
    d = decide(case(site=12), rule, NIGHT_DUTY)
    assert d.line_id == PROVIDER and any("no agreement" in r for r in d.reasons)


def test_no_rule_goes_to_the_coordinator():
    d = decide(case(site=99, modality="XR"), match_rule(case(site=99, modality="XR"), [PROVIDER_RULE]), {})
    assert d.outcome == COORDINATOR and "no routing rule" in d.reasons[0]


def test_nobody_on_duty_goes_to_the_coordinator():
    d = decide(case(site=12), POOL_RULE, {})
    assert d.outcome == COORDINATOR and "nobody on duty" in d.reasons[-1]
