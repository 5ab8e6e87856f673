"""Demo rosters: the four lines of the spec and 14 days of shifts from today, day and night.

Blocks follow the region's PDS hours (day 08:30-18:30, night 18:30-08:30 Paris
time). Pooled lines: remote reading by day, on-site garde at night, a primary
and a backup on each block; the provider line reads remotely; the neuro
referral line has an expert on astreinte. People are chosen greedily so that
every roster check passes (fewest on-calls first, then fewest shifts): the demo
roster breaks no rule of its own, and a block nobody can take without breaking
one is left open (the coverage report shows it as a gap) rather than stored
with flags. The demo radiologist "radiologue" holds the current block of the
southern pooled line as primary when the rules allow it. Idempotent: a block
that exists (line, role, start) is left alone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from apps.accounts.models import Role, User
from apps.audit.services import audit_record
from apps.regions.calendar import PARIS
from apps.rosters.checks import ShiftFacts, check_shift, counts_as_on_call
from apps.rosters.models import LineKind, OnCallLine, Shift, ShiftKind, ShiftRole
from apps.rosters.services import radiologist_facts

DAYS = 14
DEMO_RADIOLOGIST = "radiologue"


def _blocks(region: Any, now: dt.datetime) -> list[tuple[dt.datetime, dt.datetime, str]]:
    today = now.astimezone(PARIS).date()
    out = []
    for offset in range(-1, DAYS + 1):
        day = today + dt.timedelta(days=offset)
        d_start = dt.datetime.combine(day, region.weekday_night_end, tzinfo=PARIS)
        n_start = dt.datetime.combine(day, region.weekday_night_start, tzinfo=PARIS)
        n_end = dt.datetime.combine(day + dt.timedelta(days=1), region.weekday_night_end, tzinfo=PARIS)
        for start, end, part in ((d_start, n_start, "day"), (n_start, n_end, "night")):
            start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
            if end > now and start < now + dt.timedelta(days=DAYS):
                out.append((start, end, part))
    return out


def _kind(line: OnCallLine, part: str) -> str:
    if line.kind == LineKind.REFERRAL:
        return ShiftKind.ASTREINTE
    if line.kind == LineKind.PROVIDER or part == "day":
        return ShiftKind.REMOTE
    return ShiftKind.GARDE


def load(spec: dict[str, Any], ctx: Any) -> None:
    region = ctx.region
    lines: dict[str, OnCallLine] = {}
    for ls in spec.get("lines", []):
        line, created = OnCallLine.objects.get_or_create(region=region, name=ls["name"], defaults={
            "kind": ls["kind"], "subspecialty": ls.get("subspecialty", ""),
            "overflow_threshold": ls.get("overflow_threshold"), "phone": ls.get("phone", "")})
        if created:
            line.holders.set([ctx.establishments[k] for k in ls["holders"]])
            line.modalities.set(ls["modalities"])
            line.served_sites.set([ctx.establishments[k] for k in ls["served"]])
        ctx.count("on_call_lines", created)
        lines[ls["key"]] = line
    now = timezone.now()
    blocks = _blocks(region, now)
    people_cache: dict[int, Any] = {}
    facts: dict[int, list[ShiftFacts]] = {}

    def others(user: User) -> list[ShiftFacts]:
        if user.pk not in facts:
            facts[user.pk] = [ShiftFacts(s.start, s.end, s.kind, s.line_id, s.pk)
                              for s in Shift.objects.filter(radiologist=user, end__gt=now - dt.timedelta(days=40))]
        return facts[user.pk]

    def load_of(user: User) -> tuple[int, int]:
        mine = others(user)
        return sum(1 for f in mine if counts_as_on_call(f)), len(mine)

    for key, line in lines.items():
        holders = set(line.holders.values_list("pk", flat=True))
        staff = [u for u in User.objects.filter(role=Role.RADIOLOGIST, memberships__establishment__in=holders)
                 .order_by("username").distinct()]
        if not staff:
            continue
        served = dict(line.served_sites.values_list("pk", "name"))
        roles = [ShiftRole.EXPERT] if line.kind == LineKind.REFERRAL else (
            [ShiftRole.PRIMARY] if line.kind == LineKind.PROVIDER else [ShiftRole.PRIMARY, ShiftRole.BACKUP])
        existing = set(Shift.objects.filter(line=line, end__gt=now).values_list("role", "start"))
        for start, end, part in blocks:
            kind = _kind(line, part)
            taken: set[int] = set()
            for role in roles:
                if (role, start) in existing:
                    continue
                candidates = sorted(staff, key=lambda u: (*load_of(u), u.username))
                # She holds the current block, and the next one too when it starts within the hour, so that the
                # demo (and the tests loading it) never sees her shift end a few seconds after loading.
                soon = now + dt.timedelta(hours=1)
                if key == "pool_south" and role == ShiftRole.PRIMARY and start < soon and end > now:
                    candidates = [u for u in staff if u.username == DEMO_RADIOLOGIST] + candidates
                chosen: User | None = None
                for user in candidates:
                    if user.pk in taken:
                        continue
                    if user.pk not in people_cache:
                        people_cache[user.pk] = radiologist_facts(user)
                    new = ShiftFacts(start, end, kind, line.pk)
                    if not check_shift(new, people_cache[user.pk], others=others(user), served_sites=served,
                                       max_per_month=region.max_on_calls_per_month):
                        chosen = user
                        break
                if chosen is None:
                    continue  # left open: the coverage report shows the gap
                shift = Shift.objects.create(line=line, radiologist=chosen, start=start, end=end, kind=kind, role=role)
                taken.add(chosen.pk)
                others(chosen).append(ShiftFacts(start, end, kind, line.pk, shift.pk))
                ctx.count("shifts", True)
    if ctx.created.get("shifts"):
        audit_record(action="create", object_type="rosters.shift", object_repr="demo roster",
                     details={"count": ctx.created["shifts"], "via": "load_demo"})
