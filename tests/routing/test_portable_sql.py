"""Routing on either database: the hand-written rules-and-targets statement (``rule_facts_for``) gives
what the ORM gives, for lists of partners and zones of any length (empty included), and a case of the
demo region is assigned to the radiologist on duty. ``make test`` runs this module on PostgreSQL and on
SQLite (the embedded ``make run`` default)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.db.models import Q
from django.utils import timezone

from apps.regions.models import Establishment, EstablishmentKind, PoolingZone
from apps.regions.selectors import agreements_in_force
from apps.routing.models import DecisionOutcome, Notification, RoutingDecision, RoutingRule
from apps.routing.rules import RuleFacts, TargetFacts
from apps.routing.selectors import _in_list, on_duty, rule_facts_for
from apps.routing.services import case_route
from apps.worklist.models import AssignmentState
from tests.factories.worklist import make_case

MODALITIES = ("CT", "XR", "US")  # the demo rules treat MR as CT; US has no rule


def _reference(*, site: Establishment, modality: str, at: dt.datetime, zone_ids: frozenset[int]) -> list[RuleFacts]:
    """The same facts through the ORM, one query per question: slow, obviously right."""
    partners = set(agreements_in_force(at=at).filter(requesting_id=site.pk, modalities__code=modality)
                   .values_list("partner_id", flat=True))
    rules = (RoutingRule.objects.filter(region_id=site.territory.region_id, active=True, modalities=modality)
             .filter(Q(scope_kind="site", site_id=site.pk) | Q(scope_kind="zone", zone_id__in=zone_ids))
             .order_by("pk"))
    out = []
    for r in rules:
        targets = tuple(
            TargetFacts(t.line.pk, t.line.name, t.line.kind,
                        serves_site=t.line.active and t.line.served_sites.filter(pk=site.pk).exists(),
                        covers_modality=t.line.modalities.filter(pk=modality).exists(),
                        agreement=t.line.holders.filter(pk__in={site.pk} | partners).exists(),
                        overflow_threshold=t.line.overflow_threshold)
            for t in r.targets.select_related("line").order_by("order", "pk"))
        out.append(RuleFacts(r.pk, r.name, r.scope_kind, r.site_id, r.zone_id, frozenset({modality}),
                             frozenset(r.period_kinds), targets, r.priority,
                             (r.delay_vital_minutes, r.delay_urgent_minutes, r.delay_deferred_minutes)))
    return out


def test_in_list_is_false_when_empty_and_one_placeholder_per_item() -> None:
    assert _in_list("r.zone_id", "zone", 0) == "1 = 0"
    assert _in_list("r.zone_id", "zone", 3) == "r.zone_id IN (%(zone_0)s, %(zone_1)s, %(zone_2)s)"


def test_rule_facts_match_the_orm_for_every_demo_site_and_modality(demo: Any) -> None:
    now = timezone.now()
    before_any_agreement = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    sites = Establishment.objects.filter(territory__region=demo.region, kind=EstablishmentKind.REQUESTING)
    every_zone = frozenset(PoolingZone.objects.values_list("pk", flat=True))
    partner_counts, zone_counts, rules_seen = set(), set(), 0
    for site in sites.select_related("territory"):
        zones = frozenset(PoolingZone.objects.filter(territories=site.territory_id).values_list("pk", flat=True))
        # The site's own zones, none (only site rules apply) and every zone of the region, with the agreements
        # in force now (one or several partners); its own zones before any agreement was signed (no partner).
        for (zone_ids, at), modality in itertools.product(
                ((zones, now), (frozenset(), now), (every_zone, now), (zones, before_any_agreement)), MODALITIES):
            got = rule_facts_for(region_id=demo.region.pk, site_id=site.pk, modality_code=modality, at=at,
                                 zone_ids=zone_ids)
            assert got == _reference(site=site, modality=modality, at=at, zone_ids=zone_ids), (
                site.name, modality, sorted(zone_ids), at)
            rules_seen += len(got)
            partner_counts.add(min(2, agreements_in_force(at=at).filter(
                requesting_id=site.pk, modalities__code=modality).count()))
            zone_counts.add(min(2, len(zone_ids)))
    # The statement was tried with empty and multiple-item lists of both kinds, and found rules.
    assert {0, 2} <= partner_counts and {0, 2} <= zone_counts and rules_seen > 0


def test_rule_facts_default_to_the_zones_of_the_site(demo: Any) -> None:
    site = demo.establishments["vierzon"]
    now = timezone.now()
    zones = frozenset(PoolingZone.objects.filter(territories__establishments=site.pk).values_list("pk", flat=True))
    assert zones
    assert rule_facts_for(region_id=demo.region.pk, site_id=site.pk, modality_code="CT", at=now) == \
        rule_facts_for(region_id=demo.region.pk, site_id=site.pk, modality_code="CT", at=now, zone_ids=zones)


def test_a_case_of_the_demo_region_is_assigned_to_the_radiologist_on_duty(demo: Any) -> None:
    site = demo.establishments["vierzon"]
    case = make_case(demo, site="vierzon", modality_code="CT", urgency="urgent")
    now = timezone.now()
    duty = on_duty(site_id=site.pk, modality_code="CT", at=now)
    assert duty, "the demo roster has someone on duty for CT at Vierzon at any time"
    first_line = duty[0].line_id
    primaries = {d.radiologist_id for d in duty if d.line_id == first_line and d.role == "primary"}

    case = case_route(case_id=case.pk)

    assert case.assignment_state == AssignmentState.OFFERED
    assert case.assigned_to_id in primaries and case.assigned_line_id == first_line
    decision = RoutingDecision.objects.get(case=case)
    assert decision.outcome == DecisionOutcome.ASSIGNED and decision.radiologist_id == case.assigned_to_id
    assert Notification.objects.filter(user_id=case.assigned_to_id, case=case, channel="in_app").exists()
