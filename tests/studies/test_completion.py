"""Issue 15, "a busy night": completion that knows the sender, the free-space check, the dead broker.

The gateway's handlers run in this process on a real storage root, fed the events pynetdicom would give
them (an association, a C-STORE request whose data set is spooled to disk as it arrived, or not)."""

from __future__ import annotations

import datetime as dt
import time
from io import BytesIO
from types import SimpleNamespace

import pytest
from django.db import connection
from django.utils import timezone
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from apps.studies import services
from apps.studies.models import Instance, Study, StudyStatus
from apps.traceability.models import IncidentKind, TechnicalIncident
from dicom_gateway import storage
from dicom_gateway.metadata import STATUS_OUT_OF_RESOURCES, STATUS_SUCCESS
from dicom_gateway.server import Gateway, GatewayConfig, Sender
from tests.factories.dicom import make_instance
from tests.studies.test_services import Broker, receive
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db

MIN_FREE_MB = 50


@pytest.fixture
def broker(monkeypatch):
    from pds_platform.celery import app

    b = Broker()
    monkeypatch.setattr(app, "send_task", b.send_task)
    return b


@pytest.fixture
def quiet(settings):
    settings.PDS_DICOM_QUIET_SECONDS = 5
    return 5


class Association:
    """What the handlers read of pynetdicom's association: the accepted sender, and whether it is still running."""

    def __init__(self, sender: Sender) -> None:
        self.pds_sender = sender
        self.alive = True

    def is_alive(self) -> bool:
        return self.alive


@pytest.fixture
def gateway(tmp_path):
    storage.incoming_sweep(tmp_path)
    config = GatewayConfig(aet="PDS_GATEWAY", host="127.0.0.1", port=0, tls_port=0, tls_cert="", tls_key="",
                           tls_ca="", storage_root=tmp_path, min_free_mb=MIN_FREE_MB, max_associations=4,
                           max_pdu=0, workers=1)
    gw = Gateway(config)
    yield gw
    gw._pool.shutdown(wait=True)


@pytest.fixture
def association(demo):
    return Association(Sender(calling_ae="VIERZON_CT", address="127.0.0.1",
                              site_id=demo.establishments["vierzon"].pk))


def data_set_bytes(ds) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    return fp.getvalue()


def c_store(gw: Gateway, assoc: Association, ds, *, spooled: bool = True) -> int:
    """One C-STORE request as pynetdicom hands it to the handler; the gateway's status."""
    data = data_set_bytes(ds)
    if spooled:  # as reactor.GatewayDIMSE does: written to an unnamed file as it arrives, flushing once complete
        header = storage.part10_header(sop_class_uid=ds.SOPClassUID, sop_instance_uid=ds.SOPInstanceUID,
                                       transfer_syntax_uid=ExplicitVRLittleEndian)
        data_set = storage.SpooledDataSet(gw.root, lambda: header)
        data_set.write(data)
        data_set.finish()
        assert data_set.usable()
    else:
        data_set = BytesIO(data)
    request = SimpleNamespace(AffectedSOPClassUID=ds.SOPClassUID, AffectedSOPInstanceUID=ds.SOPInstanceUID,
                              DataSet=data_set)
    event = SimpleNamespace(assoc=assoc, request=request, context=SimpleNamespace(transfer_syntax=ExplicitVRLittleEndian))
    return gw.on_store(event)


def file_size(ds) -> int:
    return len(storage.part10_header(sop_class_uid=ds.SOPClassUID, sop_instance_uid=ds.SOPInstanceUID,
                                     transfer_syntax_uid=ExplicitVRLittleEndian)) + len(data_set_bytes(ds))


# --- completion knows the sender -------------------------------------------------------------------------


def test_a_study_is_not_completed_while_its_association_is_open(gateway, association, broker, quiet):
    """Before: a study completed once quiet, its association open (held up, e.g., by a database outage)."""
    study_uid = generate_uid()
    assert c_store(gateway, association, make_instance(study_uid=study_uid, series_uid=generate_uid())) == STATUS_SUCCESS
    study = Study.objects.get(study_uid=study_uid)
    t0 = study.last_received_at
    assert services.studies_reconcile(now=t0 + dt.timedelta(seconds=1)).completed == ()
    # quiet for longer than the quiet period, the association still open: held
    assert services.studies_reconcile(now=t0 + dt.timedelta(seconds=8)).completed == ()
    gateway.holds_release(association)  # on_closed, at the A-RELEASE (which also closes its database connection)
    assert services.studies_reconcile(now=t0 + dt.timedelta(seconds=9)).completed == (study.pk,)


def test_the_hold_of_a_gateway_process_that_died_runs_out_by_itself(gateway, association, broker, quiet):
    study_uid = generate_uid()
    assert c_store(gateway, association, make_instance(study_uid=study_uid, series_uid=generate_uid())) == STATUS_SUCCESS
    t0 = Study.objects.get(study_uid=study_uid).last_received_at
    for s in (1, 10, 20, 29):  # the process is gone: nobody renews nor releases
        assert services.studies_reconcile(now=t0 + dt.timedelta(seconds=s)).completed == ()
    assert len(services.studies_reconcile(
        now=t0 + dt.timedelta(seconds=services.ASSOCIATION_LEASE_SECONDS + 1)).completed) == 1


def test_the_gateway_renews_the_hold_of_open_associations_and_releases_ended_ones(gateway, association, broker):
    study_uid = generate_uid()
    c_store(gateway, association, make_instance(study_uid=study_uid, series_uid=generate_uid()))
    Study.objects.filter(study_uid=study_uid).update(lease_until=timezone.now())
    gateway.holds_renew()
    lease = Study.objects.get(study_uid=study_uid).lease_until
    assert lease > timezone.now() + dt.timedelta(seconds=services.ASSOCIATION_LEASE_SECONDS - 5)
    association.alive = False  # ended without a release or abort event
    gateway.holds_renew()
    assert Study.objects.get(study_uid=study_uid).lease_until is None


def test_after_an_interruption_the_quiet_period_restarts_from_the_recovery(demo, broker, quiet):
    """Before: the first pass after a database outage longer than the quiet period completed (and routed)
    studies whose senders had not had a chance to deliver the rest."""
    study = receive(demo.establishments["vierzon"].pk, generate_uid(), generate_uid(), 2)
    t0 = study.last_received_at

    def at(seconds: float):
        return services.studies_reconcile(now=t0 + dt.timedelta(seconds=seconds)).completed

    assert at(1) == at(2) == at(3) == at(4) == ()  # not quiet yet
    # the database is unreachable from t0+4.5 to t0+60: no pass
    assert at(60) == ()
    assert at(61) == at(63) == at(64.5) == ()
    assert at(65.5) == (study.pk,)


# --- free space -------------------------------------------------------------------------------------------


def test_the_free_space_check_counts_a_spooled_image_once(gateway, association, monkeypatch):
    """A spooled image is already on the disk: free space has counted it. Before: subtracted a second time."""
    ds = make_instance(study_uid=generate_uid(), series_uid=generate_uid(), rows=256, cols=256)
    size = file_size(ds)
    monkeypatch.setattr(storage, "free_bytes", lambda root: MIN_FREE_MB * 1024 * 1024 + size // 2)
    assert c_store(gateway, association, ds) == STATUS_SUCCESS
    assert Instance.objects.filter(sop_instance_uid=ds.SOPInstanceUID).exists()
    # Not spooled (the bytes are only in memory): they still need the room.
    other = make_instance(study_uid=generate_uid(), series_uid=generate_uid(), rows=256, cols=256)
    assert c_store(gateway, association, other, spooled=False) == STATUS_OUT_OF_RESOURCES


@pytest.mark.parametrize("spooled", [True, False])
def test_an_identical_resend_is_acknowledged_below_the_threshold(gateway, association, monkeypatch, spooled):
    """Before: refused 0xA700 like a new image, though it needs no room (nothing is written)."""
    study_uid, series_uid = generate_uid(), generate_uid()
    ds = make_instance(study_uid=study_uid, series_uid=series_uid)
    assert c_store(gateway, association, ds) == STATUS_SUCCESS
    monkeypatch.setattr(storage, "free_bytes", lambda root: MIN_FREE_MB * 1024 * 1024 - 1)
    assert c_store(gateway, association, ds, spooled=spooled) == STATUS_SUCCESS
    changed = make_instance(study_uid=study_uid, series_uid=series_uid, sop_uid=ds.SOPInstanceUID, seed=1)
    assert c_store(gateway, association, changed, spooled=spooled) == STATUS_OUT_OF_RESOURCES
    new = make_instance(study_uid=study_uid, series_uid=series_uid, number=2)
    assert c_store(gateway, association, new, spooled=spooled) == STATUS_OUT_OF_RESOURCES
    assert Instance.objects.filter(study__study_uid=study_uid).count() == 1
    assert not list((gateway.root / storage.INCOMING).iterdir())


# --- a dead broker -----------------------------------------------------------------------------------------


def test_a_dead_broker_does_not_hold_up_the_reconciler(demo, monkeypatch):
    """Before: each failed send waited ~6 s in kombu's connection retries, the reconciler with it."""
    from pds_platform.celery import app

    study = receive(demo.establishments["vierzon"].pk, generate_uid(), generate_uid(), 1)
    now = study.last_received_at + dt.timedelta(seconds=60)
    assert services.study_complete(study_id=study.pk, cutoff=now, now=now)
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    monkeypatch.setenv("CELERY_BROKER_URL", dead)  # Celery reads it before its configuration
    monkeypatch.setitem(app.conf, "broker_url", dead)
    monkeypatch.setitem(app.conf, "broker_transport", "redis")  # not the embedded broker (SQLite configuration)
    started = time.monotonic()
    result = services.studies_reconcile(now=now)
    elapsed = time.monotonic() - started
    assert result.pending == (study.pk,) and result.sent == ()
    assert elapsed < 1.5, f"one reconciler pass took {elapsed:.1f} s with the broker down"
    study.refresh_from_db()
    assert study.status == StudyStatus.COMPLETE and study.routing_enqueued_at is None


def test_the_fail_fast_send_still_reaches_the_configured_broker(demo):
    """The options that make it give up at once are understood by both transports (Redis, the embedded one)."""
    study = receive(demo.establishments["vierzon"].pk, generate_uid(), generate_uid(), 1)
    now = study.last_received_at + dt.timedelta(seconds=60)
    services.study_complete(study_id=study.pk, cutoff=now, now=now)
    assert services.study_routing_send(study_id=study.pk)
    study.refresh_from_db()
    assert study.routing_enqueued_at is not None


def test_a_reconciler_pass_hands_every_study_over_on_one_broker_connection(demo, monkeypatch):
    """A connection per message cost a TCP and Redis handshake each: under load the longest step of the hand-off.
    The connections are the real broker's (Redis, or the embedded one); only counted here."""
    from pds_platform.celery import app

    studies = [receive(demo.establishments["vierzon"].pk, generate_uid(), generate_uid(), 1) for _ in range(3)]
    now = max(s.last_received_at for s in studies) + dt.timedelta(seconds=60)
    services.study_complete(study_id=studies[0].pk, cutoff=now, now=now)  # one left pending from an earlier pass
    opened = []
    real = app.connection_for_write

    def counting(*args, **kwargs):
        opened.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(app, "connection_for_write", counting)
    Study.objects.filter(pk__in=[s.pk for s in studies]).update(
        last_received_at=now - dt.timedelta(seconds=30))
    from apps.studies.models import ReconcilerWatch

    ReconcilerWatch.objects.update_or_create(pk=1, defaults={"observed_at": now, "since": now - dt.timedelta(hours=1)})
    result = services.studies_reconcile(now=now)
    assert set(result.sent) == {s.pk for s in studies} and result.pending == ()
    assert len(opened) == 1
    assert Study.objects.filter(pk__in=[s.pk for s in studies], routing_enqueued_at__isnull=True).count() == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time, no row locks to skip")
def test_a_study_another_reconciler_holds_is_skipped_not_waited_for(live_demo):
    """The gateway's reconciler and beat's both run: one of them completing a study (its row locked) used to hold
    up the other's whole pass, every study after it waiting for that commit."""
    import psycopg

    from apps.studies.models import ReconcilerWatch

    site = live_demo.establishments["vierzon"].pk
    held, free = (receive(site, generate_uid(), generate_uid(), 1) for _ in range(2))
    now = max(held.last_received_at, free.last_received_at) + dt.timedelta(seconds=60)
    ReconcilerWatch.objects.update_or_create(pk=1, defaults={"observed_at": now, "since": now - dt.timedelta(hours=1)})
    d = connection.settings_dict
    other = psycopg.connect(host=d.get("HOST") or "127.0.0.1", port=d.get("PORT") or 5432,
                            user=d.get("USER") or "postgres", dbname=d["NAME"], autocommit=False)
    try:
        other.execute("SELECT id FROM studies_study WHERE id = %s FOR UPDATE", [held.pk])
        with connection.cursor() as cur:  # waiting on the lock (the old behaviour) fails instead of hanging
            cur.execute("SET lock_timeout = '5s'")
        started = time.monotonic()
        result = services.studies_reconcile(now=now)
        elapsed = time.monotonic() - started
    finally:
        other.rollback()
        other.close()
        with connection.cursor() as cur:
            cur.execute("RESET lock_timeout")
    assert elapsed < 5, f"the pass waited {elapsed:.1f} s for the other reconciler"
    assert result.completed == (free.pk,)
    held.refresh_from_db()
    assert held.status == StudyStatus.RECEIVING  # the next pass completes it
    assert services.studies_reconcile(now=now).completed == (held.pk,)


@pytest.mark.parametrize("spooled", [True, False])
def test_an_image_of_a_study_another_site_sent_is_refused(gateway, association, demo, spooled):
    """A site adds images to its own studies only (as STOW-RS): an image whose study another establishment sent is
    refused 0x0124 with the reason, nothing is written, the refusal is recorded."""
    study_uid = generate_uid()
    bourges = Association(Sender(calling_ae="BOURGES_CT", address="127.0.0.1",
                                 site_id=demo.establishments["bourges"].pk))
    assert c_store(gateway, bourges, make_instance(study_uid=study_uid, series_uid=generate_uid())) == STATUS_SUCCESS
    intruder = make_instance(study_uid=study_uid, series_uid=generate_uid())
    status = c_store(gateway, association, intruder, spooled=spooled)
    assert int(status[0x00000900].value if hasattr(status, "__getitem__") else status) == 0x0124
    assert not Instance.objects.filter(sop_instance_uid=intruder.SOPInstanceUID).exists()
    assert Study.objects.get(study_uid=study_uid).num_instances == 1
    assert [p for p in gateway.root.rglob("*.dcm") if intruder.SOPInstanceUID in p.name] == []
    assert TechnicalIncident.objects.filter(kind=IncidentKind.FILE_REJECTED,
                                            summary__contains="another establishment").exists()
