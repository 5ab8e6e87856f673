"""Demo routing rules: each half-region goes to its pooled line first, then to the private provider (CT
overflow and escalation); Romorantin (northern territory, served by the southern pool) has its own rule.
Idempotent: a rule that exists by name is left alone."""

from __future__ import annotations

from typing import Any

from apps.regions.models import PoolingZone
from apps.rosters.models import OnCallLine
from apps.routing.models import RoutingRule, ScopeKind
from apps.routing.services import routing_rule_save

DELAYS = {"delay_vital_minutes": 5, "delay_urgent_minutes": 15, "delay_deferred_minutes": 60}


def load(spec: dict[str, Any], ctx: Any) -> None:
    region = ctx.region
    names = {ls["key"]: ls["name"] for ls in spec.get("lines", [])}
    lines = {k: OnCallLine.objects.filter(region=region, name=n).first() for k, n in names.items()}
    if not lines.get("pool_south") or not lines.get("pool_north"):
        return
    zones = {z.name: z for z in PoolingZone.objects.filter(region=region)}
    wanted = [
        ("Demi-région Sud : ligne mutualisée Sud, puis Télérad (scanner)", ScopeKind.ZONE,
         {"zone": zones.get("Demi-région Sud")}, ["pool_south", "telerad"]),
        ("Demi-région Nord : ligne mutualisée Nord, puis Télérad (scanner)", ScopeKind.ZONE,
         {"zone": zones.get("Demi-région Nord")}, ["pool_north", "telerad"]),
        ("Romorantin : ligne mutualisée Sud, puis Télérad (scanner)", ScopeKind.SITE,
         {"site": ctx.establishments.get("romorantin")}, ["pool_south", "telerad"]),
    ]
    for name, scope, where, targets in wanted:
        if None in where.values() or RoutingRule.objects.filter(region=region, name=name).exists():
            continue
        rule = RoutingRule(region=region, name=name, scope_kind=scope, **where, **DELAYS)
        routing_rule_save(rule=rule, modality_codes=["CT", "MR", "XR"],
                          line_ids=[line.pk for k in targets if (line := lines.get(k)) is not None])
        ctx.count("routing_rules", True)
