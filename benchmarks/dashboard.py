#!/usr/bin/env python
"""Dashboard benchmark (not a test): a year of a region's activity, 200,000 cases, in a dedicated
PostgreSQL database; the daily aggregates rebuilt (timed), then every panel's selector timed several
times over the whole year and over the last 30 days for the whole region (the heaviest filter), then the
cost of the audit append on a page view (same page with and without it).

Prints the aggregate build time, per-panel p50/p95 (target p95 < 300 ms), the audit write cost, then ONE
summary line of name=value pairs.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/anything .venv/bin/python benchmarks/dashboard.py
       [--cases 200000] [--runs 10] [--fresh] [--db-name pds_bench_dashboard] [--live]
The database (``--db-name``) on the same server is created (and migrated) by the script; the data set is
generated once and reused by later runs unless --fresh is given. The aggregates of every closed day are
recomputed on each run (``manage.py rebuild_dashboard_aggregates`` does the same); --live also times the
panels computed without them, as before the aggregates.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "pds_bench_dashboard"
from apps.core.stats import percentile  # noqa: E402
from apps.core.timezones import PARIS  # noqa: E402

REGION_CODE = "BENCH"


def prepare_database(fresh: bool, db_name: str = BENCH_DB) -> None:
    import psycopg

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    admin_url = urlunsplit((parts.scheme.replace("postgres", "postgresql", 1) if parts.scheme == "postgres"
                            else parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone()
        if exists and fresh:
            conn.execute(f"DROP DATABASE {db_name} WITH (FORCE)")
            exists = None
        if not exists:
            conn.execute(f"CREATE DATABASE {db_name}")
    os.environ["DATABASE_URL"] = urlunsplit((parts.scheme, parts.netloc, f"/{db_name}", "", ""))
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pds_platform.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def generate(n_cases: int, seed: int = 7) -> None:
    """A region of 3 territories, 20 requesting sites, 4 pivots, 1 provider, 60 radiologists, 5 lines with
    a shift each night, and ``n_cases`` cases over the last 365 days with realistic stage timestamps."""
    from django.db import transaction

    from apps.accounts.models import Membership, User
    from apps.dashboards.models import RiskEntry, TrainingSession
    from apps.regions.models import Establishment, ImagingDevice, Modality, Region, Territory
    from apps.rosters.models import OnCallLine, Shift
    from apps.worklist.models import Case, CaseEvent

    rnd = random.Random(seed)
    for code, label, eligible in (("CT", "Scanner", True), ("MR", "IRM", True), ("XR", "Radio", True),
                                  ("US", "Echographie", False)):
        Modality.objects.get_or_create(code=code, defaults={"label": label, "teleradiology_eligible": eligible})
    with transaction.atomic():
        region = Region.objects.create(code=REGION_CODE, name="Bench region")
        territories = [Territory.objects.create(region=region, code=f"T{i}", name=f"Territory {i}") for i in range(3)]
        finess = iter(range(900000000, 999999999))
        sites = [Establishment.objects.create(name=f"Site {i:02d}", finess=str(next(finess)), kind="requesting",
                                              territory=territories[i % 3]) for i in range(20)]
        pivots = [Establishment.objects.create(name=f"Pivot {i}", finess=str(next(finess)), kind="pivot",
                                               territory=territories[i % 3]) for i in range(4)]
        provider = Establishment.objects.create(name="Provider", finess=str(next(finess)), kind="provider",
                                                territory=territories[0])
        for s in sites:
            ImagingDevice.objects.create(establishment=s, modality_id="CT", name="CT")
        rads = []
        for i in range(60):
            u = User.objects.create(username=f"bench.rad{i}", role="radiologist", first_name=f"R{i}",
                                    last_name=f"Bench{i}", birth_date=dt.date(1975, 1, 1), rpps="10000000009")
            Membership.objects.create(user=u, establishment=(pivots + [provider])[i % 5])
            rads.append(u)
        User.objects.create(username="bench.coord", role="ars_coordinator", region=region, is_staff=True)
        lines = []
        for i, holder in enumerate(pivots + [provider]):
            line = OnCallLine.objects.create(region=region, name=f"Line {i}", kind="provider" if holder is provider
                                             else "pooled")
            line.holders.set([holder])
            lines.append(line)
        today = dt.datetime.now(PARIS).date()
        start_day = today - dt.timedelta(days=365)
        shifts = []
        for d in range(366):
            day = start_day + dt.timedelta(days=d)
            for li, line in enumerate(lines):
                shifts.append(Shift(line=line, radiologist=rads[(d * 5 + li) % 60],
                                    start=dt.datetime.combine(day, dt.time(18, 30), tzinfo=PARIS),
                                    end=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(8, 30), tzinfo=PARIS)))
        Shift.objects.bulk_create(shifts, batch_size=5000)
        for i in range(30):
            RiskEntry.objects.create(region=region, risk=f"Risk {i}", nature="technical", impact=1 + i % 4,
                                     probability=1 + (i // 4) % 4, last_review=today - dt.timedelta(days=i * 7))
        for i in range(50):
            TrainingSession.objects.create(region=region, date=today - dt.timedelta(days=i * 7),
                                           profile=("radiologist", "radiographer", "emergency_physician")[i % 3],
                                           people_trained=3 + i % 5, establishment=sites[i % 20])

    t0 = time.monotonic()
    modalities = ["CT"] * 60 + ["XR"] * 20 + ["MR"] * 8 + ["US"] * 12
    urgencies = ["vital"] * 10 + ["urgent"] * 60 + ["deferred"] * 30
    start = dt.datetime.combine(start_day, dt.time(0), tzinfo=PARIS).astimezone(dt.UTC)
    span = 365 * 86400
    batch: list[Case] = []
    m = dt.timedelta(minutes=1)
    for _ in range(n_cases):
        req = start + dt.timedelta(seconds=rnd.randrange(span))
        modality, urgency = rnd.choice(modalities), rnd.choice(urgencies)
        site = sites[rnd.randrange(20)]
        fields: dict = {}
        if modality != "US":
            v = req + rnd.randint(2, 60) * m
            img = v + rnd.randint(10, 60) * m
            asg = img + rnd.randint(0, 15) * m
            ack = asg + rnd.randint(1, 20) * m
            sig = ack + rnd.randint(10, 90) * m
            li = rnd.randrange(5)
            fields = {"validated_at": v, "images_complete_at": img, "assigned_at": asg, "acknowledged_at": ack,
                      "signed_at": sig, "status": "reported", "assigned_line_id": lines[li].pk,
                      "assigned_to_id": rads[rnd.randrange(60)].pk, "overflowed": li == 4 and rnd.random() < .5,
                      "escalation_level": 1 if rnd.random() < .03 else 0, "assignment_state": "acknowledged"}
        else:
            fields = {"status": "redirected"}
        batch.append(Case(site=site, modality_id=modality, urgency=urgency, requested_at=req, exam=modality,
                          patient_birth_name="BENCH", patient_first_names="Patient", patient_sex="U",
                          patient_birth_date=dt.date(1950, 1, 1), clinical_question="?", **fields))
        if len(batch) == 5000:
            Case.objects.bulk_create(batch)
            batch = []
    if batch:
        Case.objects.bulk_create(batch)
    # Declines and escalations, as the routing engine records them (about 3 % of cases).
    ids = list(Case.objects.filter(site__territory__region=region, escalation_level__gt=0)
               .values_list("pk", "requested_at"))
    events = [CaseEvent(case_id=pk, at=at, kind=kind, actor_id=rads[pk % 60].pk if kind == "declined" else None,
                        message=kind) for pk, at in ids for kind in ("declined", "escalated")]
    CaseEvent.objects.bulk_create(events, batch_size=5000)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(f"generated {n_cases} cases, {len(shifts)} shifts, {len(events)} events in "
          f"{time.monotonic() - t0:.1f} s", flush=True)


def build_aggregates() -> tuple[float, int]:
    from apps.dashboards.services import dashboard_aggregates_rebuild

    t0 = time.monotonic()
    days = dashboard_aggregates_rebuild()
    return time.monotonic() - t0, len(days)


def time_panels(runs: int, days: int, *, use_aggregates: bool = True) -> dict[str, list[float]]:
    from django.utils import timezone

    from apps.dashboards.selectors import PANELS, DashboardFilter, dashboard_tables
    from apps.regions.models import Region

    region = Region.objects.get(code=REGION_CODE)
    now = timezone.now()
    f = DashboardFilter(region_id=region.pk, start=now - dt.timedelta(days=days), end=now)
    timings: dict[str, list[float]] = {p: [] for p in PANELS}
    for p in PANELS:  # warm-up (plans, caches)
        dashboard_tables(f, now=now, panels=(p,), use_aggregates=use_aggregates)
    for _ in range(runs):
        for p in PANELS:
            t = time.perf_counter()
            dashboard_tables(f, now=now, panels=(p,), use_aggregates=use_aggregates)
            timings[p].append((time.perf_counter() - t) * 1000)
    return timings


def time_audit(requests: int) -> tuple[list[float], list[float], list[float]]:
    """(page ms with audit, page ms without, bare audit_record ms). The page is the CSV export of the risk
    register: a light page, so that the audit append's share is not hidden by heavy queries."""
    from unittest import mock

    from django.test import Client
    from django.test.utils import setup_test_environment

    from apps.accounts.models import User
    from apps.audit.services import audit_record
    from apps.dashboards import views

    setup_test_environment()
    client = Client()
    client.force_login(User.objects.get(username="bench.coord"))
    url = "/dashboard/export/risks_register.csv"
    with_audit, without = [], []
    for _ in range(10):
        client.get(url)
    for i in range(requests * 2):
        use_audit = i % 2 == 0  # interleaved so that both see the same conditions
        t = time.perf_counter()
        if use_audit:
            r = client.get(url)
        else:
            with mock.patch.object(views, "audit_record", lambda **kw: None):
                r = client.get(url)
        ms = (time.perf_counter() - t) * 1000
        assert r.status_code == 200, r.status_code
        (with_audit if use_audit else without).append(ms)
    bare = []
    for i in range(requests):
        t = time.perf_counter()
        audit_record(action="read", object_type="bench", object_id=i)
        bare.append((time.perf_counter() - t) * 1000)
    return with_audit, without, bare


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--db-name", default=BENCH_DB, help=f"benchmark database (default {BENCH_DB})")
    parser.add_argument("--live", action="store_true", help="also time the panels without the aggregates")
    args = parser.parse_args()
    prepare_database(args.fresh, args.db_name)
    from apps.regions.models import Region
    from apps.worklist.models import Case

    if not Region.objects.filter(code=REGION_CODE).exists():
        generate(args.cases)
    n = Case.objects.filter(site__territory__region__code=REGION_CODE).count()
    print(f"data set: {n} cases in region {REGION_CODE}", flush=True)
    summary: dict[str, object] = {"cases": n}
    build_s, built = build_aggregates()
    print(f"aggregates: {built} days rebuilt in {build_s:.1f} s", flush=True)
    summary["aggregate_build_s"] = round(build_s, 1)
    for days, label, use_aggregates in ((366, "year", True), (30, "30d", True),
                                        *(((366, "year_live", False),) if args.live else ())):
        timings = time_panels(args.runs, days, use_aggregates=use_aggregates)
        print(f"{'panel':<12} {'p50 ms':>8} {'p95 ms':>8}  (target p95 < 300 ms, {args.runs} runs, "
              f"whole region, last {days} days, {'aggregates' if use_aggregates else 'live'})")
        for panel, values in timings.items():
            p50, p95 = percentile(values, .5), percentile(values, .95)
            print(f"{panel:<12} {p50:8.1f} {p95:8.1f}")
            summary[f"{panel}_{label}_p95_ms"] = round(p95, 1)
        summary[f"panels_within_target_{label}"] = sum(
            1 for p in timings if percentile(timings[p], .95) < 300)
    with_audit, without, bare = time_audit(args.requests)
    wa50, wa95 = percentile(with_audit, .5), percentile(with_audit, .95)
    wo50, wo95 = percentile(without, .5), percentile(without, .95)
    b50, b95 = percentile(bare, .5), percentile(bare, .95)
    print(f"page with audit append: p50 {wa50:.2f} ms, p95 {wa95:.2f} ms; without: p50 {wo50:.2f} ms, "
          f"p95 {wo95:.2f} ms; audit_record alone: p50 {b50:.2f} ms, p95 {b95:.2f} ms")
    summary.update({"page_with_audit_p50_ms": round(wa50, 2), "page_with_audit_p95_ms": round(wa95, 2),
                    "page_without_audit_p50_ms": round(wo50, 2), "page_without_audit_p95_ms": round(wo95, 2),
                    "audit_append_p50_ms": round(b50, 2), "audit_append_p95_ms": round(b95, 2)})
    with open("/proc/loadavg") as fh:
        summary["loadavg_1min"] = fh.read().split()[0]  # the machine is shared: say how busy it was
    print(" ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
