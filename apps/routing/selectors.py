"""Reads for routing: who is on duty, radiologists' loads, the facts a decision is made on, notifications."""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from typing import Any

from django.db import connection
from django.db.models import Case as DbCase
from django.db.models import F, FloatField, Model, OuterRef, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce

from apps.accounts.models import Membership
from apps.regions.calendar import PARIS, pds_kind_at
from apps.regions.models import Establishment, PoolingZone
from apps.regions.selectors import agreements_in_force, site_calendar_spec
from apps.rosters.models import OnCallLine, Shift
from apps.rosters.selectors import OnDuty, on_duty_from_shifts
from apps.routing.models import Notification, RoutingRule, RoutingTarget
from apps.routing.rules import (
    DAYTIME,
    URGENCY_WEIGHT,
    Candidate,
    CaseFacts,
    RuleFacts,
    TargetFacts,
    case_load_weight,
    has_agreement,
    match_rule,
)
from apps.worklist.models import OPEN_STATUSES, Case


def on_duty(*, site_id: int, modality_code: str, at: dt.datetime) -> list[OnDuty]:
    """Who is on duty for modality M at site S at time T: the radiologists of the lines serving the site for
    that modality who may take its cases (their employer has an agreement in force with the site, their shift
    breaks no roster rule), in the order of the routing rule that applies (first target first), primaries
    first."""
    site = Establishment.objects.select_related("territory__region").get(pk=site_id)
    rows = on_duty_from_shifts(Shift.objects.filter(line__served_sites=site_id, line__modalities=modality_code,
                                         line__active=True, start__lte=at, end__gt=at))
    facts = case_facts_for(site=site, modality_code=modality_code, eligible=True, urgency="urgent", at=at)
    may_read = {(c.line_id, c.radiologist_id)
                for cands in duty_candidates(line_ids=sorted({d.line_id for d in rows}), at=at).values()
                for c in cands if has_agreement(c, facts) and not c.flags}
    rows = [d for d in rows if (d.line_id, d.radiologist_id) in may_read]
    rule = match_rule(facts, rule_facts_for(region_id=site.territory.region_id, site_id=site_id,
                                            modality_code=modality_code, at=at, partner_ids=facts.agreed_partner_ids))
    order = {t.line_id: i for i, t in enumerate(rule.targets)} if rule else {}
    role_rank = {"primary": 0, "backup": 1, "expert": 2}
    return sorted(rows, key=lambda d: (order.get(d.line_id, 99), d.line_name, role_rank.get(d.role, 3)))


def unread_notifications(*, user_id: int) -> QuerySet[Notification]:
    return Notification.objects.filter(user_id=user_id, channel="in_app", read_at__isnull=True).select_related("case")


_OPEN_ASSIGNMENT = ("offered", "acknowledged")


def _load_expression() -> Any:
    """Weighted open cases of the radiologist of the outer row (see rules.case_load_weight)."""
    urgency = DbCase(When(urgency="vital", then=Value(URGENCY_WEIGHT["vital"])),
                     When(urgency="urgent", then=Value(URGENCY_WEIGHT["urgent"])),
                     default=Value(URGENCY_WEIGHT["deferred"]), output_field=FloatField())
    total = (Case.objects.filter(assigned_to_id=OuterRef("radiologist_id"), status__in=OPEN_STATUSES,
                                      assignment_state__in=_OPEN_ASSIGNMENT)
             .order_by().values("assigned_to_id").annotate(total=Sum(F("modality__weight") * urgency))
             .values("total"))
    return Coalesce(Subquery(total, output_field=FloatField()), Value(0.0))


def radiologist_loads(radiologist_ids: list[int]) -> dict[int, float]:
    """Weighted open cases per radiologist (offered or acknowledged and not yet reported)."""
    loads = dict.fromkeys(radiologist_ids, 0.0)
    if not radiologist_ids:
        return loads
    rows = (Case.objects.filter(assigned_to_id__in=radiologist_ids, status__in=OPEN_STATUSES,
                                assignment_state__in=_OPEN_ASSIGNMENT)
            .values_list("assigned_to_id", "modality__weight", "urgency"))
    for uid, weight, urgency in rows:
        loads[uid] += case_load_weight(weight or 1.0, urgency)
    return loads


_CACHE_SECONDS = 30.0
_cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
# Rows written by the platform's own work, not by configuring it: saving them keeps the cache.
_NOT_CONFIGURATION = frozenset({"routing.routingdecision", "routing.notification", "rosters.shift",
                                "rosters.intervention"})


def _cached(key: tuple[Any, ...], load: Any) -> Any:
    """The region's configuration (calendars, pooling zones, agreements, rules, line holders, memberships)
    changes rarely; a decision should not re-read it each time: each read over one database round trip is
    cached in this process for ``_CACHE_SECONDS``. Every change made in this process clears it at once
    (``config_cache_clear``); a change made in another process (the admin, in the web server) reaches this
    one's decisions within ``_CACHE_SECONDS``."""
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is None or now - hit[0] > _CACHE_SECONDS:
        hit = (now, load())
        _cache[key] = hit
    return hit[1]


def config_cache_clear(sender: Any = None, **_kwargs: Any) -> None:
    """Receiver of the model signals (``apps.routing.apps``): a configuration row saved, deleted or linked in
    this process clears the decision cache; the platform's own per-case rows do not."""
    if sender is not None:
        label = sender._meta.label_lower
        if label in _NOT_CONFIGURATION or sender._meta.app_label not in {"regions", "rosters", "routing",
                                                                          "accounts"}:
            return
        if sender._meta.app_label == "accounts" and sender._meta.model_name != "membership":
            return
    _cache.clear()


def period_kind_at(site: Establishment, at: dt.datetime) -> str:
    """The PDS period at ``site``: its region's hours, the public holidays of its department."""
    spec = _cached((f"calendar:{site.department_code}", site.territory.region_id), lambda: site_calendar_spec(site))
    return pds_kind_at(at, spec) or DAYTIME


def agreed_partner_ids(*, site_id: int, modality_code: str, at: dt.datetime,
                       period_kind: str | None = None) -> frozenset[int]:
    """The establishments that may read the site's ``modality_code`` studies at ``at``: the site itself and
    every partner with an agreement in force covering the modality (during regular hours, ``period_kind``
    "day", not those restricted to PDS hours)."""
    day = at.astimezone(PARIS).date()  # agreements are in force by day
    during_pds = None if period_kind is None else period_kind != DAYTIME
    return _cached(("partners", site_id, modality_code, day, during_pds), lambda: frozenset(
        agreements_in_force(at=at, during_pds=during_pds).filter(requesting_id=site_id, modalities__code=modality_code)
        .values_list("partner_id", flat=True)) | {site_id})


def case_facts_for(*, site: Establishment, modality_code: str, eligible: bool, urgency: str, at: dt.datetime,
                   case_id: int = 0, subspecialty: str = "") -> CaseFacts:
    zones = _cached(("zones", site.territory_id), lambda: frozenset(
        PoolingZone.objects.filter(territories=site.territory_id).values_list("pk", flat=True)))
    period = period_kind_at(site, at)
    partners = (agreed_partner_ids(site_id=site.pk, modality_code=modality_code, at=at, period_kind=period)
                if eligible else frozenset())
    return CaseFacts(case_id, site.pk, zones, modality_code, eligible, urgency, period, subspecialty, partners)


def _in_list(column: str, name: str, n: int) -> str:
    """``column IN (%(name_0)s, ...)``, portable where ``= ANY(%(list)s)`` is PostgreSQL's only; an empty
    list is false (``IN ()`` is a syntax error on both databases)."""
    if n == 0:
        return "1 = 0"
    return f"{column} IN ({', '.join(f'%({name}_{i})s' for i in range(n))})"


@functools.lru_cache(maxsize=64)
def _rules_sql(n_partners: int, n_zones: int) -> str:
    """The rules-and-targets statement for ``n_partners`` partner sites and ``n_zones`` pooling zones:
    plain SQL that PostgreSQL and SQLite both run, cached per shape (a region has a handful)."""
    models: dict[str, type[Model]] = {
        "rule": RoutingRule, "rule_mod": RoutingRule.modalities.through, "target": RoutingTarget,
        "line": OnCallLine, "served": OnCallLine.served_sites.through, "line_mod": OnCallLine.modalities.through,
        "holder": OnCallLine.holders.through}
    t = {name: model._meta.db_table for name, model in models.items()}
    partners = _in_list("h.establishment_id", "partner", n_partners)
    zones = _in_list("r.zone_id", "zone", n_zones)
    return f"""
        SELECT r.id, r.name, r.scope_kind, r.site_id, r.zone_id, r.period_kinds, r.priority,
               r.delay_vital_minutes, r.delay_urgent_minutes, r.delay_deferred_minutes,
               l.id, l.name, l.kind, l.overflow_threshold, l.active,
               EXISTS (SELECT 1 FROM {t["served"]} s WHERE s.oncallline_id = l.id AND s.establishment_id = %(site)s),
               EXISTS (SELECT 1 FROM {t["line_mod"]} m WHERE m.oncallline_id = l.id AND m.modality_id = %(modality)s),
               EXISTS (SELECT 1 FROM {t["holder"]} h WHERE h.oncallline_id = l.id
                       AND (h.establishment_id = %(site)s OR {partners}))
        FROM {t["rule"]} r
        JOIN {t["rule_mod"]} rm ON rm.routingrule_id = r.id AND rm.modality_id = %(modality)s
        LEFT JOIN {t["target"]} tg ON tg.rule_id = r.id
        LEFT JOIN {t["line"]} l ON l.id = tg.line_id
        WHERE r.region_id = %(region)s AND r.active
          AND ((r.scope_kind = 'site' AND r.site_id = %(site)s) OR (r.scope_kind = 'zone' AND {zones}))
        ORDER BY r.id, tg."order", tg.id"""


def rule_facts_for(*, region_id: int, site_id: int, modality_code: str, at: dt.datetime,
                   zone_ids: frozenset[int] | None = None,
                   partner_ids: frozenset[int] | None = None) -> list[RuleFacts]:
    """The active rules that may apply to this site and modality, as plain facts, each target evaluated for
    this site and modality: does its line serve the site, cover the modality, and has one of its holders an
    agreement in force with the site (``apps.regions.selectors.agreements_in_force``)?

    This runs for every decision, hence one SQL statement for rules and targets (the ORM spent more time
    compiling the equivalent queryset than PostgreSQL spent running it). The statement is portable: the
    partner and zone lists are spelled ``IN (...)`` with one placeholder each, never PostgreSQL's
    ``= ANY(array)``, so the embedded SQLite demo routes the same way. ``RuleFacts.modalities`` holds only
    ``modality_code``: the rules were filtered on it. ``partner_ids`` (``agreed_partner_ids``, already read
    for the case's facts) saves reading the agreements again; whether each on-duty radiologist's own employer
    has an agreement is decided per candidate (``rules.has_agreement``)."""
    if zone_ids is None:
        zone_ids = frozenset(PoolingZone.objects.filter(territories__establishments=site_id)
                             .values_list("pk", flat=True))
    if partner_ids is None:
        partner_ids = agreed_partner_ids(site_id=site_id, modality_code=modality_code, at=at)
    partners = tuple(sorted(partner_ids - {site_id}))
    zones = tuple(sorted(zone_ids))
    # Read at every decision, never cached: a rule's delays or targets changed by the coordinator apply to the
    # very next decision, in every process.
    return list(_rule_facts_read(region_id, site_id, modality_code, partners, zones))


def _rule_facts_read(region_id: int, site_id: int, modality_code: str, partners: tuple[int, ...],
                     zones: tuple[int, ...]) -> tuple[RuleFacts, ...]:
    params: dict[str, Any] = {"site": site_id, "modality": modality_code, "region": region_id}
    params.update({f"partner_{i}": pk for i, pk in enumerate(partners)})
    params.update({f"zone_{i}": pk for i, pk in enumerate(zones)})
    with connection.cursor() as cur:
        cur.execute(_rules_sql(len(partners), len(zones)), params)
        rows = cur.fetchall()
    rules: dict[int, tuple[Any, ...]] = {}
    targets: dict[int, list[TargetFacts]] = {}
    for row in rows:
        rules.setdefault(row[0], row[:10])
        if row[10] is not None:
            targets.setdefault(row[0], []).append(TargetFacts(
                row[10], row[11], row[12], serves_site=bool(row[15] and row[14]), covers_modality=bool(row[16]),
                agreement=bool(row[17]), overflow_threshold=row[13]))
    out = []
    for pk, (_pk, name, scope, site, zone, periods, priority, d_vital, d_urgent, d_deferred) in rules.items():
        if isinstance(periods, str):  # SQLite returns the JSON column as text
            periods = json.loads(periods)
        out.append(RuleFacts(pk, name, scope, site, zone, frozenset({modality_code}), frozenset(periods or []),
                             tuple(targets.get(pk, ())), priority, (d_vital, d_urgent, d_deferred)))
    return tuple(out)


def _line_holders() -> dict[int, frozenset[int]]:
    """The establishments holding each on-call line (every line of the database: a region has dozens)."""
    holders: dict[int, set[int]] = {}
    for line_id, est_id in OnCallLine.holders.through.objects.values_list("oncallline_id", "establishment_id"):
        holders.setdefault(line_id, set()).add(est_id)
    return {line_id: frozenset(ids) for line_id, ids in holders.items()}


def _employers(user_ids: set[int]) -> dict[int, dict[int, str]]:
    """The establishments (id -> name) of each user's memberships, cached per user (``_cached``)."""
    out: dict[int, dict[int, str]] = {}
    missing = set()
    now = time.monotonic()
    for uid in user_ids:
        hit = _cache.get(("employers", uid))
        if hit is not None and now - hit[0] <= _CACHE_SECONDS:
            out[uid] = hit[1]
        else:
            missing.add(uid)
    if missing:
        read: dict[int, dict[int, str]] = {uid: {} for uid in missing}
        for uid, est_id, est_name in (Membership.objects.filter(user_id__in=missing)
                                      .values_list("user_id", "establishment_id", "establishment__name")):
            read[uid][est_id] = est_name
        for uid, employers in read.items():
            _cache[("employers", uid)] = (now, employers)
        out.update(read)
    return out


def duty_candidates(*, line_ids: list[int], at: dt.datetime) -> dict[int, tuple[Candidate, ...]]:
    """On-duty radiologists of the lines at ``at`` with their current load, the establishments that employ
    them for the line (their memberships among its holders, else all their memberships) and the roster flags
    of their shift (one query; the holders and memberships come from the configuration cache)."""
    shifts = list(Shift.objects.filter(line_id__in=line_ids, start__lte=at, end__gt=at)
                  .order_by("line_id", "radiologist_id").annotate(load=_load_expression())
                  .values_list("line_id", "role", "radiologist_id", "radiologist__first_name",
                               "radiologist__last_name", "radiologist__subspecialties", "load", "flags"))
    if not shifts:
        return {}
    holders = _cached(("holders",), _line_holders)
    employers = _employers({row[2] for row in shifts})
    out: dict[int, list[Candidate]] = {}
    for line_id, role, rid, first, last, subs, load, flags in shifts:
        mine = employers.get(rid, {})
        for_line = {pk: name for pk, name in mine.items() if pk in holders.get(line_id, set())} or mine
        if isinstance(flags, str):  # SQLite returns the JSON column as text
            flags = json.loads(flags)
        codes = frozenset(str(f.get("code", "flag") if isinstance(f, dict) else f) for f in flags or [])
        out.setdefault(line_id, []).append(Candidate(
            rid, f"Dr {first} {last}".strip(), line_id, role, round(float(load or 0.0), 3), frozenset(subs or []),
            frozenset(for_line), ", ".join(sorted(for_line.values())), codes))
    return {k: tuple(v) for k, v in out.items()}


def routing_warm_up() -> None:
    """Warm-up hook (apps.core.warmup): load the public-holiday calendars of every establishment's department
    and the translation catalogues, so that a worker's first decision costs what the others do."""
    from django.utils import timezone, translation

    now = timezone.now()
    for site in Establishment.objects.select_related("territory__region"):
        period_kind_at(site, now)
    translation.gettext("Routing")
