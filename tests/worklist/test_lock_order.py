"""Issue 15, item 1: deadlock on study creation (docs/locking.md).

The reconciler's ``case_attach_study`` locked its study with ``select_for_update().select_related("site")``
and no ``of=``: PostgreSQL then locks every joined row FOR UPDATE, the establishment's included. Every
transaction that inserts a row referencing that establishment (the gateway's first image of a study, a case
created by the reconciler) takes FOR KEY SHARE on it for the foreign-key check, which FOR UPDATE excludes:
senders of one site queued behind the reconciler, and any transaction that held something the reconciler
needed next closed a cycle (PostgreSQL aborted one side: the image answered 0xA700).

Here real PostgreSQL connections (one per thread) create studies through the gateway's services
(``study_series_ensure`` then ``instance_record``, pipelined commit as in the gateway; some studies answer
a request by accession number, others arrive without one) while reconcilers complete them
(``studies_reconcile`` -> ``study_complete`` -> ``case_attach_study``) and route their cases
(``case_route``), and a radiologist logs calls on the requests (``critical_call_log``, which locks the
case), all on one establishment. No deadlock, no lock wait beyond a short timeout.

Cycles this found on the code before the fix (docs/locking.md):
- the radiologist's ``SELECT case JOIN site FOR UPDATE`` holds the case and waits for the site, the
  reconciler holds the site (its unqualified FOR UPDATE) and waits for the case it attaches the study to;
- routing held the case and marked its studies ``routed`` (study rows), the gateway's late image held its
  study and flagged the case (``late_images``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from io import BytesIO
from typing import Any

import pytest
from django.db import OperationalError, connection, connections
from django.utils import timezone
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.factories.dicom import make_instance

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql",
                                reason="SQLite has one writer at a time (no row locks, no deadlock to detect)")

SENDERS = 4
RECONCILERS = 2
DURATION = 4.0  # seconds of concurrent traffic
REQUESTS = 4  # requests waiting for their images: a study with their accession number is attached to them


def _meta(study_uid: str, series_uid: str, number: int, accession: str) -> Any:
    from dicom_gateway.metadata import instance_meta_parse

    ds = make_instance(study_uid=study_uid, series_uid=series_uid, number=number, accession=accession,
                       patient_id=f"PAT-{accession}")
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return instance_meta_parse(buffer.getvalue(), transfer_syntax_uid=ExplicitVRLittleEndian)


def _deadlocks() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return int(cur.fetchone()[0])


class Worker(threading.Thread):
    """Runs ``step`` in a loop on its own connection until ``stop``; counts lock failures."""

    def __init__(self, name: str, step: Callable[[int], None], stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.step, self.stop = step, stop
        self.rounds = 0
        self.lock_failures: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with connection.cursor() as cur:
                # A wait longer than this is a failure too (and keeps a lost cycle from hanging the test).
                cur.execute("SET lock_timeout = '3s'")
                cur.execute("SET deadlock_timeout = '50ms'")  # find cycles fast: many rounds in a few seconds
            while not self.stop.is_set():
                try:
                    self.step(self.rounds)
                except OperationalError as exc:  # deadlock detected, lock timeout
                    self.lock_failures.append(str(exc).splitlines()[0])
                self.rounds += 1
        except BaseException as exc:
            self.error = exc
        finally:
            connections.close_all()


def test_study_creation_and_the_reconciler_never_deadlock(transactional_db, monkeypatch, settings):
    from apps.routing.services import case_route
    from apps.studies import services as studies
    from apps.studies.models import Study
    from pds_platform.celery import app
    from tests.factories.mesh import mesh_create

    # The broker is a third party: its messages are not what this test is about.
    monkeypatch.setattr(app, "send_task", lambda *a, **kw: None)
    settings.PDS_DICOM_QUIET_SECONDS = 0
    from apps.worklist.services import critical_call_log
    from tests.factories.mesh import case_create_raw, user_create

    mesh = mesh_create("LCK")
    site_id = mesh.sites["A"].pk
    radiologist = user_create(mesh, "lockrad", "radiologist")
    requests = [case_create_raw(mesh, "A", "CT", "urgent", timezone.now(), accession_number=f"REQ-{k}").pk
                for k in range(REQUESTS)]
    stop = threading.Event()

    def sender(prefix: str) -> Callable[[int], None]:
        def step(n: int) -> None:
            # A new study each round: its first image inserts the Study row (FK to the establishment).
            study_uid, series_uid = generate_uid(), generate_uid()
            accession = f"REQ-{n % REQUESTS}" if n % 2 else f"{prefix}{n}"
            for number in (1, 2):
                meta = _meta(study_uid, series_uid, number, accession)
                now = timezone.now()
                ref = studies.study_series_ensure(site_id=site_id, calling_ae="LCK_CT", meta=meta, now=now)
                studies.instance_record(ref=ref, meta=meta, rel_path=meta.relative_path(), size=10,
                                        sha256="0" * 64, now=now, durable=lambda: None)
        return step

    def reconciler(_: int) -> None:
        result = studies.studies_reconcile(quiet_seconds=0)
        for case_id in Study.objects.filter(pk__in=result.completed, case__isnull=False) \
                .values_list("case_id", flat=True):
            case_route(case_id=case_id, trigger="test")
        if not result.completed:
            time.sleep(0.005)

    def radiologist_calls(n: int) -> None:
        critical_call_log(case_id=requests[n % REQUESTS], user=radiologist, physician_name="Dr Urgences")

    workers = [Worker(f"sender-{i}", sender(f"S{i}-"), stop) for i in range(SENDERS)]
    workers += [Worker(f"reconciler-{i}", reconciler, stop) for i in range(RECONCILERS)]
    workers.append(Worker("radiologist", radiologist_calls, stop))
    before = _deadlocks()
    for w in workers:
        w.start()
    time.sleep(DURATION)
    stop.set()
    for w in workers:
        w.join(30)
    assert not any(w.is_alive() for w in workers), "a worker hung"
    for w in workers:
        if w.error is not None:
            raise w.error
    while studies.studies_reconcile(quiet_seconds=0).completed:  # whatever was still receiving (200 a pass)
        pass
    failures = {w.name: w.lock_failures for w in workers if w.lock_failures}
    created = Study.objects.filter(site_id=site_id).count()
    attached = Study.objects.filter(site_id=site_id, case__isnull=False).count()
    deadlocks = _deadlocks() - before
    assert sum(w.rounds for w in workers if w.name.startswith("sender")) >= 20, "too little traffic to prove anything"
    assert (deadlocks, failures) == (0, {}), f"{deadlocks} deadlocks; {created} studies, {attached} attached"
    assert attached == created
