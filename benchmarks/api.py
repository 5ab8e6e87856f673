#!/usr/bin/env python
"""RIS API benchmark (not a test), in a dedicated PostgreSQL database ``pds_bench_api``.

Times, through the whole Django stack in-process (middleware, key authentication, throttle, audit append):
creating interpretation requests (POST with Idempotency-Key), listing them (page of 50 among --cases), reading
one as FHIR ServiceRequest; then the webhook outbox: --deliveries deliveries sent by the delivery service to
a local HTTP receiver (signature included), sequentially.

Prints p50/p95 per operation and ONE summary line of name=value pairs.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/anything .venv/bin/python benchmarks/api.py
       [--cases 2000] [--posts 200] [--deliveries 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "pds_bench_api"

BODY = {"patient_birth_name": "MARTIN", "patient_first_names": "Jeanne", "patient_sex": "F",
        "patient_birth_date": "1948-03-02", "local_patient_id": "IPP-1", "modality": "CT",
        "exam": "Scanner cérébral", "urgency": "urgent", "clinical_question": "Hématome ?",
        "patient_informed": True}


def prepare_database() -> None:
    import psycopg

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    with psycopg.connect(urlunsplit((scheme, parts.netloc, "/postgres", "", "")), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    os.environ["DATABASE_URL"] = urlunsplit((parts.scheme, parts.netloc, f"/{BENCH_DB}", "", ""))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pds_platform.settings")
    os.environ["CELERY_BROKER_URL"] = "memory://"  # no worker here: the outbox is driven directly
    os.environ["PDS_API_THROTTLE_RATE"] = "1000000/min"
    # The receiver is plain HTTP on loopback, which the webhook SSRF controls refuse unless told otherwise.
    os.environ["PDS_WEBHOOK_ALLOW_HTTP"] = os.environ["PDS_WEBHOOK_ALLOW_PRIVATE"] = "1"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--deliveries", type=int, default=300)
    args = parser.parse_args()
    prepare_database()


    from apps.api.services import webhook_deliveries_drive
    from tests.api.conftest import world_create
    from tests.api.receiver import Receiver
    from tests.support.processes import free_port

    world = world_create()
    client = world.client("a_rw")
    results: dict[str, list[float]] = {"post": [], "list": [], "fhir": [], "retry": []}
    ids: list[str] = []
    for i in range(args.posts):
        t = time.perf_counter()
        resp = client.post("/api/v1/requests/", BODY, format="json", HTTP_IDEMPOTENCY_KEY=f"bench-{i}")
        results["post"].append(time.perf_counter() - t)
        assert resp.status_code == 201, resp.content
        ids.append(resp.json()["id"])
    for i in range(50):
        t = time.perf_counter()
        resp = client.post("/api/v1/requests/", BODY, format="json", HTTP_IDEMPOTENCY_KEY=f"bench-{i}")
        results["retry"].append(time.perf_counter() - t)
        assert resp.status_code == 200
    # Bulk the rest of the volume directly (the list cost depends on the table, not on how rows came).
    from apps.worklist.models import Case

    template = Case.objects.get(public_id=ids[0])
    extra = []
    for _ in range(max(0, args.cases - args.posts)):
        template.pk, template.public_id, template.idempotency_key = None, None, None
        import uuid

        template.public_id = uuid.uuid4()
        extra.append(Case(**{f.attname: getattr(template, f.attname) for f in Case._meta.concrete_fields
                             if f.attname != "id"}))
    Case.objects.bulk_create(extra, batch_size=1000)
    for _ in range(50):
        t = time.perf_counter()
        resp = client.get("/api/v1/requests/?limit=50&urgency=urgent")
        results["list"].append(time.perf_counter() - t)
        assert resp.status_code == 200
    for req in ids[:100]:
        t = time.perf_counter()
        resp = client.get(f"/api/v1/fhir/ServiceRequest/{req}")
        results["fhir"].append(time.perf_counter() - t)
        assert resp.status_code == 200

    # Webhooks: deliveries for distinct requests, delivered sequentially to a loopback receiver.
    receiver = Receiver(free_port())
    receiver.start()
    sub = client.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["request.cancelled"]},
                      format="json").json()
    from apps.worklist.services import case_cancel

    targets = list(Case.objects.filter(status="awaiting_validation").values_list("pk", flat=True)[:args.deliveries])
    for pk in targets:
        case_cancel(case_id=pk, reason="bench")
    t = time.perf_counter()
    for pk in targets:
        assert webhook_deliveries_drive(subscription_id=sub["id"], case_id=pk) == "done"
    elapsed = time.perf_counter() - t
    receiver.stop()
    assert len(receiver.received) == len(targets)

    for name, values in results.items():
        print(f"{name:6s} n={len(values):4d} p50={pct(values, 50):7.1f} ms p95={pct(values, 95):7.1f} ms "
              f"mean={statistics.mean(values) * 1000:7.1f} ms")
    rate = len(targets) / elapsed
    print(f"webhooks: {len(targets)} deliveries in {elapsed:.2f} s = {rate:.0f}/s (sequential, signed, audited)")
    print(f"SUMMARY post_p95_ms={pct(results['post'], 95):.1f} retry_p95_ms={pct(results['retry'], 95):.1f} "
          f"list_p95_ms={pct(results['list'], 95):.1f} fhir_p95_ms={pct(results['fhir'], 95):.1f} "
          f"cases={Case.objects.count()} webhook_per_s={rate:.0f}")


if __name__ == "__main__":
    main()
