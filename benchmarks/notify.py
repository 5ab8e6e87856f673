#!/usr/bin/env python
"""Notification benchmark (not a test): last image acknowledged -> radiologist notified, on both configurations.

Two platforms are started side by side, from outside, as their operators start them (``manage.py run_platform``
in its own process group, stopped with Ctrl-C):

- **embedded**: SQLite and the embedded broker under a temporary ``var/`` (``DJANGO_DEBUG=1``, no
  ``DATABASE_URL``/``CELERY_BROKER_URL``/``REDIS_URL``), after ``migrate`` + ``load_demo``;
- **production**: ``DJANGO_DEBUG=0``, PostgreSQL (a fresh ``<db>_bench_notify`` database on the server of
  ``DATABASE_URL``) and Redis (the database of ``REDIS_URL``, flushed first), after ``migrate`` +
  ``collectstatic`` + ``load_demo``; the web app is reached as through a TLS-terminating proxy
  (``X-Forwarded-Proto: https``).

A modality of a demo site (calling AE ``VIERZON_CT``, pynetdicom, one association per study) sends a small CT
study (new patient, accession and study UID each time, so each becomes a new case of origin DICOM). The clock
starts right after the C-STORE response (Success) of the study's last image and stops at the ``sent_at`` of the
radiologist's SMS notification of that case (``apps.routing.notifiers.FileSmsBackend``; the line in the SMS file
is checked too). Studies go one at a time, alternating between the two platforms (round-robin, so the shared
machine's load weighs on both alike), each awaited until notified, then a short pause: latency, not a burst.
The first ``--warmup`` studies of each platform are printed and left out of the figures.

Measured, per configuration (median and p99 over ``--studies`` studies):
- notify: last image acknowledged -> SMS sent, with the quiet period (``PDS_DICOM_QUIET_SECONDS``: the gateway
  waits that long after the last image before declaring a study complete) subtracted;
- breakdown: last image -> study complete (``Study.completed_at``, quiet period subtracted: the wait for the
  completion pass, which runs every second; it can come out a few ms negative, the gateway counting the quiet
  period from its own record of the last image, before the client has read the response), complete -> assigned
  (``Case.assigned_at``), assigned -> notified.
Target: notify p99 < 2 s on both (the completion pass's 1 s tick plus routing's complete -> assigned p99 < 1 s,
``benchmarks/routing.py``). The quiet period is reported separately. With 30 studies the p99 is the slowest
one. A study the gateway did not acknowledge, or that was not notified within ``--timeout``, is listed and
counted as failed (exit status 1). Ends with ONE summary line of name=value pairs.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/x REDIS_URL=redis://127.0.0.1:6379/2 \
       .venv/bin/python benchmarks/notify.py [--studies 30] [--quiet 2] [--slices 4] [--only production]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.core.timezones import PARIS  # noqa: E402
from benchmarks import _common  # noqa: E402
from benchmarks._common import GATEWAY_AET, SENDER_AET, as_epoch, manage, percentile, start, stop  # noqa: E402

# What the platform wrote about one study: completion, its case's assignment, the first SMS of that assignment.
# ``{p}`` is the driver's placeholder. Read with plain SQL: the benchmark runs two Django settings at once.
PROGRESS_SQL = """
    SELECT s.completed_at, c.id, c.assigned_at, c.assignment_state,
           (SELECT MIN(n.sent_at) FROM routing_notification n
             WHERE n.case_id = c.id AND n.channel = 'sms' AND n.kind = 'assigned' AND n.status = 'sent'),
           (SELECT COUNT(*) FROM routing_notification n
             WHERE n.case_id = c.id AND n.channel = 'sms' AND n.status = 'failed')
    FROM studies_study s LEFT JOIN worklist_case c ON c.id = s.case_id
    WHERE s.study_uid = {p}"""


@dataclass
class Sample:
    study_uid: str
    last_ack: float  # client clock, right after the last C-STORE response
    case_id: int | None = None
    completed: float | None = None
    assigned: float | None = None
    notified: float | None = None
    sms_line: float | None = None  # time written on the case's line of the SMS file
    outcome: str = "pending"


@dataclass
class Platform(_common.Platform):
    query: Callable[[str], tuple[Any, ...] | None] | None = None
    samples: list[Sample] = field(default_factory=list)
    warmup: list[Sample] = field(default_factory=list)


def embedded_platform(tmp: Path, quiet: float) -> Platform:
    work = tmp / "embedded"
    env = _common.base_env(work, quiet)
    env["DJANGO_DEBUG"] = "1"
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "load_demo")
    db = work / "var" / "db.sqlite3"

    def query(study_uid: str) -> tuple[Any, ...] | None:
        conn = sqlite3.connect(db, timeout=30, isolation_level=None)
        try:
            return conn.execute(PROGRESS_SQL.format(p="?"), (study_uid,)).fetchone()  # type: ignore[no-any-return]
        finally:
            conn.close()

    return Platform("embedded", env, work, query=query)


def production_platform(tmp: Path, quiet: float, database_url: str, redis_url: str) -> Platform:
    import psycopg

    work = tmp / "production"
    env = _common.production_env(work, quiet, database_url=database_url, redis_url=redis_url, suffix="bench_notify")
    _common.prepare_production(env)
    u = urlparse(env["DATABASE_URL"])
    conn = psycopg.connect(host=u.hostname or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                           password=u.password, dbname=u.path.lstrip("/"), autocommit=True)

    def query(study_uid: str) -> tuple[Any, ...] | None:
        return conn.execute(PROGRESS_SQL.format(p="%s"), (study_uid,)).fetchone()

    return Platform("production", env, work, query=query)


class StoreFailed(Exception):
    def __init__(self, study_uid: str, message: str) -> None:
        super().__init__(message)
        self.study_uid = study_uid


def send_study(port: int, n: int, slices: int) -> tuple[str, float]:
    """One CT study from the demo site's modality; returns its UID and the client time right after the
    Success response of its last image. A modality's patience: pynetdicom's default 30 s per response."""
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
    from pynetdicom import AE

    from tests.factories.dicom import make_instance

    study_uid, series_uid = generate_uid(), generate_uid()
    tag = f"{os.getpid()}{n:04d}"
    datasets = [make_instance(study_uid=study_uid, series_uid=series_uid, number=k, rows=64, cols=64,
                              patient_id=f"BN{tag}", patient_name=f"BENCH^NOTIFY{n}", accession=f"BN{tag}",
                              description="Scanner cérébral", seed=n) for k in range(1, slices + 1)]
    ae = AE(ae_title=SENDER_AET)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title=GATEWAY_AET)
    if not assoc.is_established:
        raise StoreFailed(study_uid, "association refused or aborted")
    try:
        for k, ds in enumerate(datasets, start=1):
            t0 = time.time()
            status = assoc.send_c_store(ds)
            if not status or status.Status != 0x0000:
                answer = f"0x{status.Status:04X}" if status else "no response"
                raise StoreFailed(study_uid, f"image {k}/{len(datasets)} sent at "
                                  f"{dt.datetime.fromtimestamp(t0, dt.UTC):%H:%M:%S.%f} UTC: {answer} after "
                                  f"{time.time() - t0:.1f} s")
        last_ack = time.time()
    finally:
        if assoc.is_established:
            assoc.release()
    return study_uid, last_ack


def sms_line_time(platform: Platform, case_id: int) -> float | None:
    if not platform.sms_file.exists():
        return None
    mark = re.compile(rf"\bCase #{case_id}\b")
    for line in platform.sms_file.read_text(encoding="utf-8").splitlines():
        stamp, _, text = line.partition("\t")
        if mark.search(text):
            return dt.datetime.fromisoformat(stamp).timestamp()
    return None


def measure_one(platform: Platform, n: int, slices: int, timeout: float) -> Sample:
    assert platform.query is not None
    try:
        study_uid, last_ack = send_study(platform.dicom_port, n, slices)
    except StoreFailed as exc:  # counted as a failed study; the run goes on
        return Sample(exc.study_uid, float("nan"), outcome=f"store failed: {exc}")
    sample = Sample(study_uid, last_ack)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = platform.query(study_uid)
        if row is not None:
            completed, case_id, assigned, state, notified, failed = row
            sample.completed, sample.case_id = as_epoch(completed), case_id
            sample.assigned, sample.notified = as_epoch(assigned), as_epoch(notified)
            if notified is not None:
                sample.outcome = "notified"
                break
            if state == "coordinator" or failed:
                sample.outcome = "coordinator" if state == "coordinator" else "sms failed"
                break
        time.sleep(0.05)
    else:
        sample.outcome = "timeout"
    if sample.case_id is not None:
        sample.sms_line = sms_line_time(platform, sample.case_id)
        if sample.outcome == "notified" and sample.sms_line is None:
            sample.outcome = "notified, no SMS line"
    return sample


def describe(s: Sample, quiet: float) -> str:
    if s.outcome.startswith("store failed"):
        return s.outcome
    def ms(a: float | None, b: float | None, minus: float = 0.0) -> str:
        return f"{(b - a - minus) * 1000:7.0f}" if a is not None and b is not None else "      -"

    return (f"notify-quiet {ms(s.last_ack, s.notified, quiet)} ms  [last->complete-quiet "
            f"{ms(s.last_ack, s.completed, quiet)}, complete->assigned {ms(s.completed, s.assigned)}, "
            f"assigned->notified {ms(s.assigned, s.notified)}]  case {s.case_id} {s.outcome}")


def sample_spans(s: Sample, quiet: float) -> dict[str, float]:
    """The notify latency and its three parts, in ms, of a notified study (the quiet period subtracted)."""
    assert s.completed is not None and s.assigned is not None and s.notified is not None, s
    return {"notify": (s.notified - s.last_ack - quiet) * 1000,
            "last_to_complete_minus_quiet": (s.completed - s.last_ack - quiet) * 1000,
            "complete_to_assigned": (s.assigned - s.completed) * 1000,
            "assigned_to_notified": (s.notified - s.assigned) * 1000}


def error_lines(platform: Platform) -> list[str]:
    text = platform.log.read_text(errors="replace") if platform.log.exists() else ""
    return [line for line in text.splitlines() if re.search(r"\b(ERROR|CRITICAL)\b|Traceback", line)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=30, help="measured studies per configuration")
    parser.add_argument("--warmup", type=int, default=1, help="studies per configuration left out of the figures")
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--quiet", type=float, default=2.0, help="PDS_DICOM_QUIET_SECONDS of both platforms")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between one study notified and the next")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one study's notification")
    parser.add_argument("--only", choices=("embedded", "production"), action="append",
                        help="run only this configuration (repeatable; default: both)")
    args = parser.parse_args()
    names = args.only or ["embedded", "production"]
    database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pds")
    redis_url = os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/2"
    if "production" in names and not (database_url.startswith("postgres") and redis_url.startswith("redis")):
        print("production needs DATABASE_URL=postgres://... and REDIS_URL=redis://...", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="pds-bench-notify-"))
    platforms: list[Platform] = []
    stopped: dict[str, str] = {}
    try:
        for name in names:
            t0 = time.perf_counter()
            platform = (embedded_platform(tmp, args.quiet) if name == "embedded"
                        else production_platform(tmp, args.quiet, database_url, redis_url))
            platforms.append(platform)
            print(f"{name}: migrated and demo loaded in {time.perf_counter() - t0:.0f} s", flush=True)
        for platform in platforms:
            t0 = time.perf_counter()
            start(platform)
            print(f"{platform.name}: run_platform healthy in {time.perf_counter() - t0:.0f} s "
                  f"(web :{platform.web_port}, DICOM :{platform.dicom_port})", flush=True)
        now_paris = dt.datetime.now(dt.UTC).astimezone(PARIS)
        load_start = os.getloadavg()[0]
        print(f"sending {args.warmup} + {args.studies} studies of {args.slices} slices per configuration, "
              f"quiet period {args.quiet:g} s, starting {now_paris:%Y-%m-%d %H:%M} Europe/Paris "
              f"(load average {load_start:.1f} on {os.cpu_count()} CPUs)", flush=True)
        for i in range(args.warmup + args.studies):
            order = platforms if i % 2 == 0 else platforms[::-1]
            for platform in order:
                sample = measure_one(platform, i, args.slices, args.timeout)
                (platform.warmup if i < args.warmup else platform.samples).append(sample)
                label = "warm-up" if i < args.warmup else f"{i - args.warmup + 1:>3}"
                print(f"  {label} {platform.name:<10} {describe(sample, args.quiet)}", flush=True)
                time.sleep(args.pause)
        load_end = os.getloadavg()[0]
        for platform in platforms:
            try:
                body = platform.healthz().json()
                restarts = {k: v.get("restarts") for k, v in (body.get("processes") or {}).items()
                            if isinstance(v, dict)}
                print(f"{platform.name}: /healthz {body.get('status')}, restarts {restarts}", flush=True)
            except (requests.RequestException, ValueError) as exc:
                print(f"{platform.name}: /healthz unreadable after the run: {exc}", flush=True)
    finally:
        for platform in platforms:
            stopped[platform.name] = stop(platform)

    # The summary: notify figures of both configurations and the quiet period first, then the breakdown.
    headline: dict[str, str] = {}
    results: dict[str, str] = {}
    for platform in platforms:
        ok = [s for s in platform.samples if s.outcome == "notified"]
        failed = len(platform.samples) - len(ok)
        errors = error_lines(platform)
        print(f"\n{platform.name}: {len(ok)}/{len(platform.samples)} studies notified; run_platform "
              f"{stopped[platform.name]}; {len(errors)} ERROR/Traceback lines in its log")
        for line in errors[:10]:
            print(f"    {line[:200]}")
        for n, s in enumerate(platform.samples, start=1):
            if s.outcome != "notified":
                print(f"  study {n}: {s.outcome}")
        key = platform.name
        results[f"{key}_studies_notified"] = str(len(ok))
        results[f"{key}_studies_failed"] = str(failed)
        if not ok:
            continue
        spans = [sample_spans(s, args.quiet) for s in ok]
        parts = {part: [span[part] for span in spans] for part in spans[0]}
        sms_vs_sent = [(s.notified - s.sms_line) * 1000 for s in ok if s.notified and s.sms_line]
        for part, values in parts.items():
            p50, p99 = statistics.median(values), percentile(values, 0.99)
            print(f"  {part:<30} median {p50:6.0f} ms  p99 {p99:6.0f} ms  (min {min(values):.0f}, "
                  f"max {max(values):.0f})")
            into = headline if part == "notify" else results
            into[f"{key}_{part}_p50_ms"] = f"{p50:.0f}"
            into[f"{key}_{part}_p99_ms"] = f"{p99:.0f}"
        if sms_vs_sent:
            print(f"  SMS line written {statistics.median(sms_vs_sent):.1f} ms (median) before sent_at")
    headline["quiet_period_s"] = f"{args.quiet:g}"
    results["slices_per_study"] = str(args.slices)
    # The machine's own load weighs on latency: keep it next to the figures.
    results["loadavg_1min_start"] = f"{load_start:.1f}"
    results["loadavg_1min_end"] = f"{load_end:.1f}"
    results["cpus"] = str(os.cpu_count())
    succeeded = all(p.samples and all(s.outcome == "notified" for s in p.samples) for p in platforms)
    if succeeded:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"\nplatform logs, databases and SMS files kept in {tmp}")
    print()
    print(" ".join(f"{k}={v}" for k, v in {**headline, **results}.items()))
    return 0 if succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
