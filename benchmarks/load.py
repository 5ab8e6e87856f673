#!/usr/bin/env python
"""Load benchmark (not a test), issue 15 "a busy night": ``--senders`` scanners of the demo's requesting sites
send small CT studies back to back with dcmtk ``storescu`` for ``--seconds``, against the production
configuration (``DJANGO_DEBUG=0``, PostgreSQL in a fresh ``<db>_bench_load`` database, Redis of ``REDIS_URL``
flushed first, ``manage.py run_platform``: gunicorn, gateway, worker, beat; the platform's own quiet period
unless ``--quiet``).

The senders and the readings are ``tests/support/load.py`` (also run, shorter, by ``tests/integration/
test_load.py`` in ``make test``). Once the senders stop, the run waits (``--drain``) until every acknowledged
study has been routed to its end, then stops the platform with Ctrl-C and reads:

Every fifth study (``--late-every``) gets a late series: 4 images in another association once the study is
complete (quiet period + 1 s after its last image), as a scanner sends a reconstruction.

- images acknowledged, and the others by C-STORE response status (dcmtk's text; ``no response``: association
  refused or aborted);
- deadlocks: ``pg_stat_database.deadlocks`` of the database, after minus before (and the ``deadlock detected``
  lines of that database in the PostgreSQL server log, when readable);
- per acknowledged study, from the database's own timestamps: completion (``Study.completed_at``) -> first
  routing decision (``RoutingDecision.at``), first image received (``Study.first_received_at``) -> radiologist
  alerted (first ``assigned`` notification delivered, SMS when the radiologist has a phone); and the spans in
  between (last image -> complete includes the quiet period), over time in 10 s windows of completion;
- the Celery queue's length and the load average, sampled every second while sending.

Targets on a 2-core machine: 0 refused, 0 deadlocks, no acknowledged study left without a radiologist alerted,
completion -> decision p99 under 2 s; exit status 1 if one is missed. Ends with ONE summary line of
name=value pairs. Earlier measurement (before fixes): completion -> decision p50 15.3 s, p99 81.8 s; 402 of
12,800 images refused 0xA700 with 431 deadlocks.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/x REDIS_URL=redis://127.0.0.1:6379/2 \
       .venv/bin/python benchmarks/load.py [--senders 10] [--seconds 120] [--slices 24] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.core.timezones import PARIS  # noqa: E402
from benchmarks import _common  # noqa: E402
from tests.support import load  # noqa: E402

TARGET_P99_MS = 2000.0
DEFAULT_QUIET_SECONDS = 5.0  # the platform's PDS_DICOM_QUIET_SECONDS when not set


def table(outcome: load.LoadOutcome) -> None:
    run = outcome.run
    images = run.images()
    print(f"\nsent: {len(run.studies)} studies ({len(run.acknowledged_studies())} fully acknowledged) of "
          f"{run.slices} images by {run.senders} senders of {run.sites} sites in {run.stopped - run.started:.0f} s; "
          f"{sum(s.late_series for s in run.studies)} with a late series of 4 images")
    print(f"  images acknowledged {images[load.SUCCESS]}")
    for status, n in sorted(outcome.refused().items(), key=lambda kv: -kv[1]):
        print(f"  images refused      {n}  ({status}{', ' + load.STATUS_CODES[status] if status in load.STATUS_CODES else ''})")
    in_log = "unreadable" if outcome.deadlocks_in_log is None else str(outcome.deadlocks_in_log)
    print(f"  deadlocks           {outcome.deadlocks} (pg_stat_database; server log: {in_log})")
    lost = outcome.lost()
    print(f"  studies lost        {len(lost)} (acknowledged, no radiologist alerted)")
    for s in lost[:10]:
        t = outcome.times.get(s.study_uid)
        state = (f"complete={t.completed is not None} decided={t.decided is not None} outcome={t.first_outcome} "
                 f"assignment={t.assignment_state}") if t else "unknown to the database"
        print(f"    {s.calling_ae} {s.accession}: {state}")
    for s in [s for s in run.studies if not s.acknowledged][:3]:
        print(f"  e.g. {s.calling_ae} {s.accession} {dict(s.statuses)}:\n    "
              + "\n    ".join(s.output_tail.splitlines()[-6:]))

    measured = [outcome.times[s.study_uid] for s in run.acknowledged_studies() if s.study_uid in outcome.times]
    print(f"\n{'span (ms)':<26}{'n':>6}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    for name, values in load.spans(measured).items():
        if values:
            print(f"{name:<26}{len(values):>6}{load.percentile(values, 0.5):>9.0f}{load.percentile(values, 0.9):>9.0f}"
                  f"{load.percentile(values, 0.99):>9.0f}{max(values):>9.0f}")
    # Over the run: does the wait grow (a backlog) or stay flat (a fixed cost)?
    print("\ncompletion -> decision by 10 s window of completion (from the first send):")
    windows: dict[int, list[float]] = {}
    for t in measured:
        if t.completed is not None and t.decided is not None:
            windows.setdefault(int((t.completed - run.started) // 10), []).append((t.decided - t.completed) * 1000)
    for w in sorted(windows):
        values = windows[w]
        print(f"  {w * 10:>4}-{w * 10 + 10:<4} s  n {len(values):>4}  p50 {statistics.median(values):>7.0f}  "
              f"max {max(values):>7.0f}")
    queue = [q for _, _, q in run.samples if q is not None]
    loads = [la for _, la, _ in run.samples]
    if queue:
        print(f"Celery queues (routing + background) while sending: mean {statistics.mean(queue):.1f}, max {max(queue)} messages")
    if loads:
        print(f"load average (1 min) while sending: mean {statistics.mean(loads):.1f}, max {max(loads):.1f} "
              f"on {os.cpu_count()} CPUs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--senders", type=int, default=10, help="parallel storescu senders (one site each)")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the senders send")
    parser.add_argument("--slices", type=int, default=24, help="images per study (64x64 CT)")
    parser.add_argument("--sites", type=int, default=None,
                        help="demo sites the senders are spread over (default: one site per sender, up to 16)")
    parser.add_argument("--quiet", type=float, default=None,
                        help="PDS_DICOM_QUIET_SECONDS (default: the platform's own, as in production)")
    parser.add_argument("--late-every", type=int, default=5,
                        help="every n-th study gets a late series (4 images, another association) once complete; 0: none")
    parser.add_argument("--drain", type=float, default=180.0,
                        help="seconds to wait, once sending stopped, for the studies to be routed")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds between the platform reporting healthy and the first send (default: none)")
    parser.add_argument("--keep", action="store_true", help="keep the platform's directory (logs, SMS file)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a variable of the platform's environment (repeatable), e.g. PDS_DICOM_WORKERS=1")
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pds")
    redis_url = os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/2"
    if not (database_url.startswith("postgres") and redis_url.startswith("redis")):
        print("needs DATABASE_URL=postgres://... and REDIS_URL=redis://...", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="pds-bench-load-"))
    work = tmp / "production"
    t0 = time.perf_counter()
    env = _common.production_env(work, args.quiet, database_url=database_url, redis_url=redis_url,
                                 suffix="bench_load")
    env.update(item.split("=", 1) for item in args.set)
    platform = _common.Platform("production", env, work)
    _common.prepare_production(env)
    print(f"production: migrated and demo loaded in {time.perf_counter() - t0:.0f} s", flush=True)
    db_url, db_name = env["DATABASE_URL"], env["DATABASE_URL"].rsplit("/", 1)[-1]
    stopped = "not started"
    try:
        t0 = time.perf_counter()
        _common.start(platform)
        print(f"production: run_platform healthy in {time.perf_counter() - t0:.0f} s "
              f"(web :{platform.web_port}, DICOM :{platform.dicom_port})", flush=True)
        if args.settle:
            print(f"letting the platform settle for {args.settle:g} s before sending", flush=True)
            time.sleep(args.settle)
        deadlocks_before = load.deadlocks(db_url)
        server_log = load.ServerLog.open()
        now_paris = dt.datetime.now(dt.UTC).astimezone(PARIS)
        load_start = os.getloadavg()
        if args.set:
            print(f"platform environment: {' '.join(args.set)}", flush=True)
        print(f"{args.senders} senders for {args.seconds:g} s, studies of {args.slices} images, quiet period "
              f"{args.quiet if args.quiet is not None else 'default'}, starting {now_paris:%Y-%m-%d %H:%M} "
              f"Europe/Paris (load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} on "
              f"{os.cpu_count()} CPUs)", flush=True)
        run = load.load_send(platform.dicom_port, work / "senders", senders=args.senders, seconds=args.seconds,
                             slices=args.slices, sites=args.sites, late_every=args.late_every,
                             late_after=float(env.get("PDS_DICOM_QUIET_SECONDS", DEFAULT_QUIET_SECONDS)) + 1.0,
                             queue_length=load.redis_queue_length(redis_url),
                             progress=lambda line: print(line, flush=True))
        load_end = os.getloadavg()
        print(f"sending stopped after {run.stopped - run.started:.0f} s; waiting for routing", flush=True)
        t0 = time.perf_counter()
        with load.connect(db_url) as conn:
            times = load.wait_settled(conn, [s.study_uid for s in run.acknowledged_studies()], args.drain)
        print(f"settled {time.perf_counter() - t0:.0f} s after the last send", flush=True)
        try:
            body = platform.healthz().json()
            restarts = {k: v.get("restarts") for k, v in (body.get("processes") or {}).items() if isinstance(v, dict)}
            print(f"/healthz {body.get('status')}, restarts {restarts}", flush=True)
        except (requests.RequestException, ValueError) as exc:
            print(f"/healthz unreadable after the run: {exc}", flush=True)
    finally:
        stopped = _common.stop(platform)
    print(f"run_platform {stopped}")
    outcome = load.LoadOutcome(run, times, load.deadlocks(db_url) - deadlocks_before, server_log.deadlocks(db_name))
    table(outcome)

    figures = outcome.figures()
    figures.update({"senders": str(args.senders), "sites": str(outcome.run.sites), "seconds": f"{args.seconds:g}",
                    "slices_per_study": str(args.slices),
                    "quiet_period_s": env.get("PDS_DICOM_QUIET_SECONDS", "default"),
                    "loadavg_1min_start": f"{load_start[0]:.1f}", "loadavg_1min_end": f"{load_end[0]:.1f}",
                    "cpus": str(os.cpu_count())})
    p99 = float(figures["completion_to_decision_p99_ms"])
    met = (not outcome.refused() and outcome.deadlocks == 0 and not outcome.lost() and p99 < TARGET_P99_MS)
    print(f"\ntargets (0 refused, 0 deadlocks, none lost, completion -> decision p99 < {TARGET_P99_MS:.0f} ms): "
          f"{'met' if met else 'MISSED'}")
    if args.keep or not met:
        print(f"platform log, SMS file kept in {tmp} (database {db_name})")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
