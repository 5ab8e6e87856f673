"""A busy night, driven from outside (issue 15): N requesting sites' scanners send small CT studies at once with
dcmtk ``storescu`` to a running platform, then what the platform wrote is read back from its PostgreSQL
database. Used by ``benchmarks/load.py`` (10 senders, 2 minutes, figures) and ``tests/integration/test_load.py``
(4 senders, 30 s, no refusal, no deadlock, no lost study).

Each sender is one demo site (its calling AE title) sending studies back to back, one association (one
``storescu`` run) per study, each study a new patient and accession so that it becomes a new case of origin
DICOM. The files are copies of templates pydicom wrote once per sender, with new UIDs, patient and accession
(the platform never sees pydicom).

Counted from the senders' side: images acknowledged, and the others by the text dcmtk gives for their C-STORE
response status (``Refused: OutOfResources`` is 0xA7xx) or ``no response`` (association refused or aborted). From
PostgreSQL: deadlocks (``pg_stat_database.deadlocks`` of the platform's database, before/after), and per study
its own timestamps: first image received, complete, routing enqueued, first routing decision, case assigned,
first ``assigned`` alert delivered to the radiologist (SMS when the user has a phone, else in-app).

Imports neither Django nor the platform: only dcmtk, pydicom (via the test factories), psycopg and redis.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent.parent
GATEWAY_AET = "PDS_GATEWAY"
SUCCESS = "Success"
NO_RESPONSE = "no response"
# The status ranges behind dcmtk's texts (DU_cstoreStatusString), to read a refusal as the issue writes it.
STATUS_CODES = {"Refused: OutOfResources": "0xA7xx", "Error: DataSetDoesNotMatchSOPClass": "0xA9xx",
                "Error: CannotUnderstand": "0xCxxx", "Refused: SOPClassNotSupported": "0x0122"}


def demo_senders() -> list[str]:
    """The calling AE titles of the demo region's requesting sites (fixtures/demo_region.json)."""
    region = json.loads((ROOT / "fixtures" / "demo_region.json").read_text(encoding="utf-8"))
    return [e["ae"] for e in region["establishments"] if e.get("kind") == "requesting" and e.get("ae")]


# --- Senders ----------------------------------------------------------------------------------------------


@dataclass
class StudySent:
    sender: int
    calling_ae: str
    accession: str
    study_uid: str
    images: int
    started: float  # epoch, storescu started
    finished: float  # epoch, storescu exited
    statuses: Counter[str] = field(default_factory=Counter)  # response text -> images
    output_tail: str = ""
    late_series: bool = False  # a second series sent in another association once the study was complete

    @property
    def acknowledged(self) -> bool:
        return self.statuses[SUCCESS] == self.images


# UIDs of fixed length (root, run tag, sender, kind, study number, image number): the files of a study are the
# sender's template files with the placeholders of the same length replaced, bytes for bytes.
UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's root


def _uid(tag: int, sender: int, kind: int, n: int, k: int) -> bytes:
    # Each component starts with 1: a UID component has no leading zero.
    return f"{UID_ROOT}1{tag:05d}.1{sender:02d}.{kind + 1}.1{n:05d}.1{k:03d}".encode()


class StudyWriter:
    """One sender's CT series (``slices`` images of 64x64, written once by pydicom as templates), copied for each
    study with new study, series and image UIDs, patient and accession: a few microseconds per file, so that the
    senders take little of the machine they share with the platform."""

    ACCESSION = b"LDPLACEHOLDER"  # 13 characters, as ``accession_for``

    def __init__(self, slices: int, *, sender: int, tag: int) -> None:
        from pydicom.filebase import DicomBytesIO

        from tests.factories.dicom import make_instance

        self.sender, self.tag, self.count = sender, tag, 0
        self.study_mark, self.series_mark = _uid(99999, 99, 8, 99999, 999), _uid(99999, 99, 8, 99999, 998)
        self.templates: list[bytes] = []
        for k in range(1, slices + 1):
            ds = make_instance(study_uid=self.study_mark.decode(), series_uid=self.series_mark.decode(),
                               sop_uid=_uid(99999, 99, 8, 99998, k).decode(), number=k, rows=64, cols=64,
                               accession=self.ACCESSION.decode(), patient_id=f"IPP{self.ACCESSION.decode()}",
                               patient_name=f"LOAD^{self.ACCESSION.decode()}", description="Scanner cérébral",
                               seed=sender)
            out = DicomBytesIO()
            ds.save_as(out, enforce_file_format=True)
            self.templates.append(out.getvalue())

    def accession_for(self, n: int) -> str:
        return f"LD{self.tag:05d}{self.sender:02d}{n:04d}"  # an accession number is at most 16 characters (SH)

    def write(self, directory: Path, *, accession: str, study_uid: str | None = None,
              slices: int | None = None) -> tuple[str, list[Path]]:
        """A new study, or with ``study_uid`` a new series of that study (its first ``slices`` images)."""
        self.count += 1
        n, tag, sender = self.count, self.tag, self.sender
        study = study_uid.encode() if study_uid else _uid(tag, sender, 0, n, 0)
        series = _uid(tag, sender, 1, n, 0)
        acc = accession.encode()
        assert len(acc) == len(self.ACCESSION), accession
        directory.mkdir(parents=True, exist_ok=True)
        files = []
        for k, template in enumerate(self.templates[:slices], start=1):
            data = (template.replace(self.study_mark, study).replace(self.series_mark, series)
                    .replace(_uid(99999, 99, 8, 99998, k), _uid(tag, sender, 2, n, k)).replace(self.ACCESSION, acc))
            path = directory / f"ct_{k:03d}.dcm"
            path.write_bytes(data)
            files.append(path)
        return study.decode(), files


def store_responses(output: str) -> dict[str, str]:
    """File name -> text of its C-STORE response status, from ``storescu -v`` output."""
    responses: dict[str, str] = {}
    current = None
    for line in output.splitlines():
        m = re.search(r"Sending file: (.+)$", line)
        if m:
            current = Path(m.group(1).strip()).name
            continue
        m = re.search(r"Received Store Response \((.+)\)", line)
        if m and current:
            responses[current] = m.group(1).strip()
            current = None
    return responses


def send_study(port: int, files: list[Path], calling_ae: str, timeout: float = 300) -> tuple[Counter[str], str]:
    """One association (as a scanner sends one study); the images counted by response status."""
    cmd = ["storescu", "-v", "-nh", "-aet", calling_ae, "-aec", GATEWAY_AET, "127.0.0.1", str(port),
           *map(str, files)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, "TCP_NODELAY": "1"})
        out = r.stdout + r.stderr
    except subprocess.TimeoutExpired as exc:
        out = f"storescu timed out after {timeout:.0f} s\n{exc.stdout or ''}{exc.stderr or ''}"
    responses = store_responses(out)
    statuses = Counter(responses.get(f.name, NO_RESPONSE) for f in files)
    return statuses, out


@dataclass
class LoadRun:
    senders: int
    seconds: float
    slices: int
    sites: int
    started: float = 0.0
    stopped: float = 0.0
    studies: list[StudySent] = field(default_factory=list)
    samples: list[tuple[float, float, int | None]] = field(default_factory=list)  # (t, loadavg, queue length)

    def images(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for s in self.studies:
            total.update(s.statuses)
        return total

    @property
    def acknowledged_images(self) -> int:
        return self.images()[SUCCESS]

    @property
    def refused_images(self) -> dict[str, int]:
        return {k: v for k, v in self.images().items() if k != SUCCESS}

    def acknowledged_studies(self) -> list[StudySent]:
        return [s for s in self.studies if s.acknowledged]


def load_send(port: int, workdir: Path, *, senders: int, seconds: float, slices: int, sites: int | None = None,
              late_every: int = 5, late_after: float = 6.0, queue_length: Callable[[], int | None] | None = None,
              progress: Callable[[str], None] | None = None) -> LoadRun:
    """``senders`` scanners sending studies back to back for ``seconds`` (a study started before the end is
    finished), spread over the first ``sites`` demo sites (default: one site each while there are enough):
    several senders of one site send over parallel associations, and their studies contend for the same
    site's rows. Every ``late_every``-th study (0: none) gets a late series (a reconstruction: 4 images in a
    new association) ``late_after`` seconds after its last image, once the quiet period has made it complete
    and routing took it in hand, between the sender's next studies. ``queue_length``, if given, is sampled
    every second with the load average."""
    aes = demo_senders()[:sites] if sites else demo_senders()
    run = LoadRun(senders, seconds, slices, len(aes[:senders]))
    lock = threading.Lock()
    tag = int(time.time()) % 100000
    writers = [StudyWriter(slices, sender=i, tag=tag) for i in range(senders)]
    run.started = time.time()
    deadline = time.monotonic() + seconds

    def send_late(ae: str, due: float, sent: StudySent, directory: Path, files: list[Path]) -> None:
        time.sleep(max(0.0, due - time.monotonic()))
        statuses, out = send_study(port, files, ae)
        shutil.rmtree(directory, ignore_errors=True)
        with lock:
            sent.images += len(files)
            sent.statuses.update(statuses)
            if statuses[SUCCESS] != len(files):
                sent.output_tail = out[-2000:]

    def sender(i: int) -> None:
        ae = aes[i % len(aes)]
        late: list[tuple[float, StudySent, Path, list[Path]]] = []
        n = 0
        while time.monotonic() < deadline:
            while late and late[0][0] <= time.monotonic():
                send_late(ae, *late.pop(0))
            accession = writers[i].accession_for(n)
            directory = workdir / f"sender{i:02d}" / f"{n:04d}"
            study_uid, files = writers[i].write(directory, accession=accession)
            started = time.time()
            statuses, out = send_study(port, files, ae)
            sent = StudySent(i, ae, accession, study_uid, len(files), started, time.time(), statuses,
                             "" if statuses[SUCCESS] == len(files) else out[-2000:])
            shutil.rmtree(directory, ignore_errors=True)
            with lock:
                run.studies.append(sent)
            if late_every and n % late_every == late_every - 1:
                sent.late_series = True
                late_dir = workdir / f"sender{i:02d}" / f"{n:04d}-late"
                _, late_files = writers[i].write(late_dir, accession=accession, study_uid=study_uid, slices=4)
                late.append((time.monotonic() + late_after, sent, late_dir, late_files))
            n += 1
        for item in late:  # every study is finished, late series included
            send_late(ae, *item)

    threads = [threading.Thread(target=sender, args=(i,), name=f"sender-{i}", daemon=True) for i in range(senders)]
    for t in threads:
        t.start()
    next_report = time.monotonic() + 10
    while any(t.is_alive() for t in threads):
        try:
            length = queue_length() if queue_length else None
        except Exception:  # a sample lost is not a failure of the run
            length = None
        run.samples.append((time.time(), os.getloadavg()[0], length))
        if progress and time.monotonic() >= next_report:
            next_report += 10
            with lock:
                done, images = len(run.studies), sum(s.statuses[SUCCESS] for s in run.studies)
            progress(f"  {time.time() - run.started:4.0f} s: {done} studies sent, {images} images acknowledged, "
                     f"load {os.getloadavg()[0]:.1f}, queue {length}")
        time.sleep(1)
    run.stopped = time.time()
    return run


# --- What the platform wrote ------------------------------------------------------------------------------


def connect(database_url: str) -> Any:
    import psycopg

    u = urlsplit(database_url)
    return psycopg.connect(host=u.hostname or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                           password=u.password, dbname=u.path.lstrip("/"), autocommit=True)


def deadlocks(database_url: str) -> int:
    """Deadlocks PostgreSQL detected in this database since its statistics were reset. A backend reports its
    counters at most every second and when it exits: read it once the platform is stopped for the final count."""
    with connect(database_url) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0


@dataclass
class ServerLog:
    """The PostgreSQL server log, if this process may read it: the part written during the run."""

    path: Path | None
    offset: int = 0

    @classmethod
    def open(cls) -> ServerLog:
        candidates = sorted(Path("/var/log/postgresql").glob("postgresql-*.log")) if Path(
            "/var/log/postgresql").is_dir() else []
        path = Path(os.environ["PDS_PG_LOG"]) if os.environ.get("PDS_PG_LOG") else (
            candidates[-1] if candidates else None)
        if path is None or not os.access(path, os.R_OK):
            return cls(None)
        return cls(path, path.stat().st_size)

    def deadlocks(self, database: str) -> int | None:
        """'deadlock detected' lines of ``database`` since opened (the Debian log_line_prefix names it as
        user@database); None when the log cannot be read."""
        if self.path is None:
            return None
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        return sum(1 for line in text.splitlines() if "deadlock detected" in line and f"@{database} " in line)


STUDIES_SQL = """
    SELECT s.study_uid, s.first_received_at, s.last_received_at, s.completed_at, s.routing_enqueued_at,
           c.id, c.assigned_at, c.assignment_state, s.num_instances,
           (SELECT MIN(d.at) FROM routing_routingdecision d WHERE d.case_id = c.id),
           (SELECT d.outcome FROM routing_routingdecision d WHERE d.case_id = c.id ORDER BY d.attempt LIMIT 1),
           (SELECT COALESCE(MIN(n.sent_at) FILTER (WHERE n.channel = 'sms'), MIN(n.sent_at))
              FROM routing_notification n
             WHERE n.case_id = c.id AND n.kind = 'assigned' AND n.status = 'sent')
    FROM studies_study s LEFT JOIN worklist_case c ON c.id = s.case_id
    WHERE s.study_uid = ANY(%s)"""


def _epoch(value: dt.datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


@dataclass
class StudyTimes:
    study_uid: str
    first_image: float | None
    last_image: float | None
    completed: float | None
    enqueued: float | None
    case_id: int | None
    assigned: float | None
    assignment_state: str | None
    images: int
    decided: float | None
    first_outcome: str | None
    alerted: float | None

    @property
    def settled(self) -> bool:
        """Routing has done what it will do: a radiologist alerted, or the coordinator called."""
        return self.alerted is not None or self.assignment_state == "coordinator"


def study_times(conn: Any, study_uids: list[str]) -> dict[str, StudyTimes]:
    rows = conn.execute(STUDIES_SQL, (study_uids,)).fetchall()
    out = {}
    for (uid, first, last, completed, enqueued, case_id, assigned, state, images, decided, outcome,
         alerted) in rows:
        out[uid] = StudyTimes(uid, _epoch(first), _epoch(last), _epoch(completed), _epoch(enqueued), case_id,
                              _epoch(assigned), state, images, _epoch(decided), outcome, _epoch(alerted))
    return out


def wait_settled(conn: Any, study_uids: list[str], timeout: float) -> dict[str, StudyTimes]:
    """Poll until every study has been routed to its end (see ``StudyTimes.settled``) or ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        times = study_times(conn, study_uids)
        if (len(times) == len(study_uids) and all(t.settled for t in times.values())) or (
                time.monotonic() > deadline):
            return times
        time.sleep(0.5)


def redis_queue_length(redis_url: str, queues: tuple[str, ...] = ("celery", "routing")) -> Callable[[], int | None]:
    """Messages waiting in the platform's queues (settings.CELERY_TASK_QUEUES), all priorities."""
    import redis

    client = redis.Redis.from_url(redis_url)
    # One list per priority (settings.CELERY_TASK_ROUTES; kombu names them queue, queue\x06\x163, ...).
    keys = [k for q in queues for k in [q] + [f"{q}\x06\x16{p}" for p in (3, 6, 9)]]
    return lambda: sum(int(client.llen(k)) for k in keys)


# --- Figures ----------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


# Each span of a study's way, in ms, between two of its timestamps; the first two are the figures.
SPANS: dict[str, tuple[str, str]] = {
    "completion_to_decision": ("completed", "decided"),
    "first_image_to_alert": ("first_image", "alerted"),
    "last_image_to_complete": ("last_image", "completed"),
    "complete_to_enqueued": ("completed", "enqueued"),
    "enqueued_to_decision": ("enqueued", "decided"),
    "decision_to_alert": ("decided", "alerted"),
}


def spans(times: list[StudyTimes]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for name, (a, b) in SPANS.items():
        values = []
        for t in times:
            start, end = getattr(t, a), getattr(t, b)
            if start is not None and end is not None:
                values.append((end - start) * 1000)
        out[name] = values
    return out


@dataclass
class LoadOutcome:
    """The verdict of a run: what the issue's targets count."""

    run: LoadRun
    times: dict[str, StudyTimes]
    deadlocks: int
    deadlocks_in_log: int | None

    def lost(self) -> list[StudySent]:
        """Acknowledged studies that no radiologist was alerted of (unknown to the database, never complete,
        not routed, or escalated to the coordinator)."""
        return [s for s in self.run.acknowledged_studies()
                if s.study_uid not in self.times or self.times[s.study_uid].alerted is None]

    def refused(self) -> dict[str, int]:
        return self.run.refused_images

    def figures(self) -> dict[str, str]:
        images = self.run.images()
        acknowledged = self.run.acknowledged_studies()
        measured = [self.times[s.study_uid] for s in acknowledged if s.study_uid in self.times]
        by_span = spans(measured)
        out = {"load_acknowledged_images": str(images[SUCCESS]),
               "load_refused_images": str(sum(self.refused().values())),
               "load_deadlocks": str(self.deadlocks),
               "load_studies_sent": str(len(self.run.studies)),
               "load_studies_acknowledged": str(len(acknowledged)),
               "load_studies_lost": str(len(self.lost()))}
        for name in ("completion_to_decision", "first_image_to_alert"):
            values = by_span[name]
            out[f"{name}_p50_ms"] = f"{percentile(values, 0.5):.0f}" if values else "nan"
            out[f"{name}_p99_ms"] = f"{percentile(values, 0.99):.0f}" if values else "nan"
        return out
