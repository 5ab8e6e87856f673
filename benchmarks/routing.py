#!/usr/bin/env python
"""Routing benchmark (not a test) on PostgreSQL, in a dedicated database it creates (``<db>_bench_routing``).

Region: 50 requesting sites, 10 pivot establishments each holding a pooled line serving 5 sites, one private
provider (CT overflow and escalation target), 200 radiologists, a month of shifts (day and night blocks,
primary x2 + backup per pooled line, primary x2 on the provider line), one routing rule per site.

Measures
1. routing decision time: loading the facts and deciding (``apps.routing.services.routing_decide``), in
   process, for 1,000 cases (median, p99);
2. study complete -> assigned through a real Celery worker on Redis: 1,000 studies arriving in bursts
   (each: Study row completed, matched to a case by ``case_attach_study``, routing enqueued after commit);
   time from ``Study.completed_at`` to ``Case.assigned_at`` (median, p99).
Targets: decision p99 < 20 ms; complete -> assigned p99 < 1 s. Ends with ONE summary line of name=value pairs.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/x CELERY_BROKER_URL=redis://127.0.0.1:6379/2 \
       .venv/bin/python benchmarks/routing.py [--studies 1000] [--burst 50] [--pause 1.0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import create_database, percentile  # noqa: E402


def build_region() -> dict[str, int]:
    from django.contrib.auth.hashers import make_password

    from apps.accounts.models import Membership, Role, User
    from apps.regions.calendar import PARIS
    from apps.regions.models import Agreement, Establishment, Modality, PoolingZone, Region, Territory
    from apps.rosters.models import OnCallLine, Shift
    from apps.routing.models import RoutingRule, RoutingTarget

    for code, label, dicom, eligible, weight in (("CT", "Scanner", ["CT"], True, 1.5), ("MR", "IRM", ["MR"], True, 2),
                                                 ("XR", "Radio", ["CR", "DX"], True, 0.5),
                                                 ("US", "Echo", ["US"], False, 1)):
        Modality.objects.get_or_create(code=code, defaults={"label": label, "dicom_codes": dicom,
                                                            "teleradiology_eligible": eligible, "weight": weight})
    region = Region.objects.create(code="BENCH", name="Bench region", max_on_calls_per_month=31)
    territory = Territory.objects.create(region=region, code="T", name="Territory")
    PoolingZone.objects.create(region=region, name="Whole region").territories.add(territory)

    def finess(n: int) -> str:  # 8 digits + Luhn check digit
        base = f"{90000000 + n:08d}"
        digits = [int(c) for c in base]
        total = 0
        for i, d in enumerate(reversed(digits)):
            if i % 2 == 0:
                d *= 2
                d = d - 9 if d > 9 else d
            total += d
        return base + str((10 - total % 10) % 10)

    est = lambda n, name, kind: Establishment.objects.create(  # noqa: E731
        name=name, finess=finess(n), kind=kind, territory=territory)
    sites = [est(i, f"Site {i}", "requesting") for i in range(50)]
    pivots = [est(100 + i, f"Pivot {i}", "pivot") for i in range(10)]
    provider = est(200, "Provider", "provider")
    ct, mr, xr = (Modality.objects.get(code=c) for c in ("CT", "MR", "XR"))
    password = make_password("bench")
    radiologists = [User(username=f"rad{i}", role=Role.RADIOLOGIST, password=password, first_name="R",
                         last_name=f"{i}", birth_date=dt.date(1975, 1, 1), phone=f"060000{i:04d}",
                         email=f"rad{i}@bench.invalid") for i in range(200)]
    User.objects.bulk_create(radiologists)
    radiologists = list(User.objects.filter(role=Role.RADIOLOGIST).order_by("pk"))
    now = dt.datetime.now(PARIS).replace(minute=0, second=0, microsecond=0)
    first = (now - dt.timedelta(days=15)).replace(hour=8, minute=30)
    blocks = []
    for day in range(31):
        d0 = first + dt.timedelta(days=day)
        blocks += [(d0, d0.replace(hour=18, minute=30)),
                   (d0.replace(hour=18, minute=30), d0 + dt.timedelta(days=1))]
    shifts = []
    lines = []
    for i, pivot in enumerate(pivots):
        line = OnCallLine.objects.create(region=region, name=f"Pool {i}", kind="pooled", overflow_threshold=6.0)
        line.holders.add(pivot)
        line.modalities.add(ct, mr, xr)
        served = sites[i * 5:(i + 1) * 5]
        line.served_sites.add(*served)
        staff = radiologists[i * 18:(i + 1) * 18]
        for r in staff:
            Membership.objects.create(user=r, establishment=pivot)
            r.authorised_sites.add(*served)
        for b, (start, end) in enumerate(blocks):
            for k, role in enumerate(("primary", "primary", "backup")):
                shifts.append(Shift(line=line, radiologist=staff[(b * 3 + k) % 18], start=start, end=end,
                                    kind="garde", role=role))
        for s in served:
            a = Agreement.objects.create(requesting=s, partner=pivot, valid_from=dt.date(2025, 1, 1), status="signed",
                                         signed_on=dt.date(2024, 12, 1))
            a.modalities.add(ct, mr, xr)
        lines.append((line, served))
    pline = OnCallLine.objects.create(region=region, name="Provider CT", kind="provider")
    pline.holders.add(provider)
    pline.modalities.add(ct)
    pline.served_sites.add(*sites)
    pstaff = radiologists[180:]
    for b, (start, end) in enumerate(blocks):
        for k in range(2):
            shifts.append(Shift(line=pline, radiologist=pstaff[(b * 2 + k) % 20], start=start, end=end,
                                kind="remote", role="primary"))
    for s in sites:
        a = Agreement.objects.create(requesting=s, partner=provider, valid_from=dt.date(2025, 1, 1), status="signed",
                                     signed_on=dt.date(2024, 12, 1))
        a.modalities.add(ct)
    Shift.objects.bulk_create(shifts)
    for line, served in lines:
        for s in served:
            rule = RoutingRule.objects.create(region=region, name=f"{s.name}", scope_kind="site", site=s)
            rule.modalities.add(ct, mr, xr)
            RoutingTarget.objects.create(rule=rule, line=line, order=0)
            RoutingTarget.objects.create(rule=rule, line=pline, order=1)
    return {"sites": len(sites), "radiologists": len(radiologists), "shifts": len(shifts)}


def new_study(site_id: int, n: int, modality: str) -> int:
    from django.utils import timezone

    from apps.studies.models import Study

    now = timezone.now()
    return Study.objects.create(study_uid=f"1.2.826.0.1.3680043.8.498.{time.time_ns()}.{n}", site_id=site_id,
                                patient_name=f"BENCH^P{n}", patient_id=f"IPP{n}", modality=modality,
                                accession_number=f"ACC{n}", num_series=1, num_instances=100,
                                first_received_at=now, last_received_at=now, completed_at=now).pk


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--pause", type=float, default=1.0)
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pds")
    if not base.startswith("postgres"):
        print("needs DATABASE_URL=postgres://...", file=sys.stderr)
        return 2
    os.environ["DATABASE_URL"] = create_database(base, "bench_routing")
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/2")
    tmp = Path(tempfile.mkdtemp(prefix="bench-routing-"))
    os.environ.update({"PDS_VAR_DIR": str(tmp / "var"), "DJANGO_DEBUG": "1",
                       "PDS_SMS_BACKEND": "apps.routing.notifiers.FileSmsBackend", "PDS_SMS_FILE": str(tmp / "sms"),
                       "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pds_platform.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from apps.core.context import acting_as
    from apps.regions.models import Establishment
    from apps.routing.queue import enqueue_routing
    from apps.routing.services import routing_decide
    from apps.worklist.models import Case
    from apps.worklist.services import case_attach_study
    from pds_platform.celery import app

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    shape = build_region()
    print(f"region built in {time.perf_counter() - t0:.1f} s: {shape}", flush=True)
    sites = list(Establishment.objects.filter(kind="requesting").values_list("pk", flat=True))
    modalities = ["CT", "CT", "MR", "DX"]

    # 1. Decision time, in process, on cases matched from studies (not routed: nobody holds them).
    decision_ms: list[float] = []
    with acting_as(channel="worker", username="bench"):
        for n in range(args.studies):
            with transaction.atomic():
                case = case_attach_study(study_id=new_study(sites[n % len(sites)], n, modalities[n % 4]))
            case = Case.objects.select_related("site__territory__region", "modality").get(pk=case.pk)
            from django.utils import timezone

            _decision, ms = routing_decide(case, at=timezone.now())
            decision_ms.append(ms)
    Case.objects.update(status="cancelled")  # keep them out of the loads and of the reconciler
    print(f"decision: median {statistics.median(decision_ms):.2f} ms, p99 {percentile(decision_ms, 0.99):.2f} ms",
          flush=True)

    # 2. Study complete -> assigned through a real worker.
    app.control.purge()
    env = dict(os.environ)
    log = open(tmp / "worker.log", "wb")
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "pds_platform", "worker", "-l", "WARNING",
                               "--concurrency", "2", "--without-gossip", "--without-mingle", "-n", "bench@%h"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        from apps.core.models import Heartbeat

        deadline = time.monotonic() + 60
        while not Heartbeat.objects.filter(kind="worker").exists():
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("worker did not start: " + (tmp / "worker.log").read_text()[-2000:])
            time.sleep(0.2)
        case_ids: list[int] = []
        n0 = args.studies
        with acting_as(channel="gateway", username="bench"):
            for b in range(0, args.studies, args.burst):
                for n in range(n0 + b, n0 + min(b + args.burst, args.studies)):
                    with transaction.atomic():
                        case = case_attach_study(study_id=new_study(sites[n % len(sites)], n, modalities[n % 4]))
                        enqueue_routing(case.pk)
                    case_ids.append(case.pk)
                time.sleep(args.pause)
        deadline = time.monotonic() + 300
        while Case.objects.filter(pk__in=case_ids, assigned_at__isnull=True).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("cases not assigned in time")
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
    from apps.studies.models import Study

    lat = []
    for completed, assigned in Study.objects.filter(case_id__in=case_ids).values_list("completed_at",
                                                                                     "case__assigned_at"):
        lat.append((assigned - completed).total_seconds() * 1000)
    overflowed = Case.objects.filter(pk__in=case_ids, overflowed=True).count()
    print(f"complete->assigned: median {statistics.median(lat):.0f} ms, p99 {percentile(lat, 0.99):.0f} ms "
          f"({len(lat)} studies in bursts of {args.burst} every {args.pause:.1f} s; {overflowed} overflowed)",
          flush=True)
    print(f"routing_decision_median_ms={statistics.median(decision_ms):.2f} "
          f"routing_decision_p99_ms={percentile(decision_ms, 0.99):.2f} "
          f"complete_to_assigned_median_ms={statistics.median(lat):.0f} "
          f"complete_to_assigned_p99_ms={percentile(lat, 0.99):.0f} studies={len(lat)} burst_size={args.burst} "
          f"sites={shape['sites']} radiologists={shape['radiologists']} shifts={shape['shifts']} "
          f"overflowed_cases={overflowed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
