"""Study assembly, completion, hand-off to routing, late series, ultrasound (database, no gateway process)."""

from __future__ import annotations

import datetime as dt
from io import BytesIO

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from apps.regions.models import DicomNode
from apps.studies import services
from apps.studies.models import Instance, Series, Study, StudyStatus
from apps.traceability.models import IncidentKind, TechnicalIncident
from apps.worklist.models import CaseEvent, CaseEventKind
from dicom_gateway.metadata import instance_meta_parse
from tests.factories.dicom import US_IMAGE_STORAGE, make_instance

pytestmark = pytest.mark.django_db


def meta_of(**kw):
    ds = make_instance(**kw)
    bio = BytesIO()
    ds.save_as(bio, enforce_file_format=True)
    return instance_meta_parse(bio.getvalue(), transfer_syntax_uid=ExplicitVRLittleEndian)


class Broker:
    """Stands in for the Celery app's send_task (the broker is a third party; its outage is simulated)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list]] = []
        self.down = False

    def send_task(self, name, args=None, **kw):
        if self.down:
            raise ConnectionError("broker down")
        self.sent.append((name, args))

    @property
    def routing(self) -> list[tuple[str, list]]:
        """The routing's messages (the worklist's preparation of the metadata for the viewer aside)."""
        return [(name, args) for name, args in self.sent if name.startswith("routing.")]


@pytest.fixture
def broker(monkeypatch):
    from pds_platform.celery import app

    b = Broker()
    monkeypatch.setattr(app, "send_task", b.send_task)
    return b


@pytest.fixture(autouse=True)
def reconciler_watching(request):
    """The reconciler has been passing all along (these tests jump through time with ``now=``; an interruption
    of the reconciler restarts the quiet period, see test_completion.py)."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or marker.args[:1] == (False,):
        return
    from apps.studies.models import ReconcilerWatch

    now = timezone.now()
    ReconcilerWatch.objects.update_or_create(pk=1, defaults={"observed_at": now + dt.timedelta(days=1),
                                                             "since": now - dt.timedelta(days=1)})


def receive(site_id, study_uid, series_uid, n, *, series_number=1, modality="CT", sop_class=None):
    kw = {"sop_class": sop_class} if sop_class else {}
    now = timezone.now()
    for i in range(1, n + 1):
        meta = meta_of(study_uid=study_uid, series_uid=series_uid, number=i, series_number=series_number,
                       modality=modality, **kw)
        ref = services.study_series_ensure(site_id=site_id, calling_ae="VIERZON_CT", meta=meta, now=now)
        services.instance_record(ref=ref, meta=meta, rel_path=meta.relative_path(), size=10, sha256="0" * 64, now=now)
    return Study.objects.get(study_uid=study_uid)


def later(seconds=60):
    return timezone.now() + dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("calling, called, address, accepted, diagnostic", [
    ("VIERZON_CT", "PDS_GATEWAY", "127.0.0.1", True, 0),
    ("VIERZON_CT", "PDS_GATEWAY", "::1", True, 0),
    ("VIERZON_CT", "PDS_GATEWAY", "10.20.30.40", True, 0),
    ("VIERZON_CT", "OTHER", "127.0.0.1", False, 0x07),
    ("VIERZON_CT", "PDS_GATEWAY", "192.0.2.7", False, 0x03),
    ("VIERZON_CT", "PDS_GATEWAY", "not-an-ip", False, 0x03),
    ("UNKNOWN", "PDS_GATEWAY", "127.0.0.1", False, 0x03),
])
@pytest.mark.django_db(False)
def test_only_known_senders_from_their_hosts(calling, called, address, accepted, diagnostic):
    node = DicomNode(ae_title="VIERZON_CT", allowed_hosts="127.0.0.1, ::1, 10.20.0.0/16", establishment_id=7)
    d = services.sender_decide(calling_ae=calling, called_ae=called, address=address, tls=False,
                               gateway_aet="PDS_GATEWAY", node=node if calling == "VIERZON_CT" else None)
    assert (d.accepted, d.diagnostic) == (accepted, diagnostic)
    assert d.site_id == (7 if accepted else d.site_id)


def test_inactive_node_and_tls_requirement(demo, settings):
    node = DicomNode.objects.get(ae_title="VIERZON_CT")
    assert services.sender_check(calling_ae="VIERZON_CT", called_ae=settings.PDS_DICOM_AET, address="::1",
                                 tls=False).site_id == demo.establishments["vierzon"].pk
    node.tls_required = True
    node.save()
    kw = {"calling_ae": "VIERZON_CT", "called_ae": settings.PDS_DICOM_AET, "address": "127.0.0.1"}
    assert not services.sender_check(tls=False, **kw).accepted
    assert services.sender_check(tls=True, **kw).accepted
    DicomNode.objects.filter(pk=node.pk).update(active=False)
    assert not services.sender_check(tls=True, **kw).accepted


def test_refused_association_is_a_security_event_and_an_incident(demo):
    from apps.audit.models import AuditEntry

    d = services.sender_check(calling_ae="EVIL", called_ae="PDS_GATEWAY", address="10.1.2.3", tls=False)
    services.association_refused_record(calling_ae="EVIL", called_ae="PDS_GATEWAY", address="10.1.2.3", decision=d)
    assert AuditEntry.objects.filter(action="security", details__calling_ae="EVIL").exists()
    assert TechnicalIncident.objects.filter(kind=IncidentKind.ASSOCIATION_REFUSED).count() == 1


def test_study_assembled_completed_and_routed_once(demo, broker, django_capture_on_commit_callbacks):
    site = demo.establishments["vierzon"].pk
    study_uid, s1, s2 = generate_uid(), generate_uid(), generate_uid()
    receive(site, study_uid, s1, 3, series_number=1)
    study = receive(site, study_uid, s2, 2, series_number=2)
    assert (study.num_series, study.num_instances, study.status) == (2, 5, StudyStatus.RECEIVING)
    assert study.other_patient_ids == [{"id": "1234567890123", "issuer": "INS-NIR", "type": ""}]
    assert study.patient_id_issuer == "CHVIERZON" and study.station_name == "VZ-CT1" and study.body_part == "HEAD"
    assert services.studies_reconcile(now=timezone.now()).completed == ()  # not quiet yet
    with django_capture_on_commit_callbacks(execute=True):
        result = services.studies_reconcile(now=later())
    assert result.completed == (study.pk,) and result.sent == (study.pk,)
    study.refresh_from_db()
    # Sent is not routed: the study awaits the assignment of its case.
    assert study.status == StudyStatus.COMPLETE and study.routing_enqueued_at and study.case_id
    assert broker.routing == [("routing.route_case", [study.case_id])]
    assert study.case.origin == "dicom" and study.case.local_patient_id == "PAT-0001"
    with django_capture_on_commit_callbacks(execute=True):
        services.studies_reconcile(now=later(120))
    assert len(broker.routing) == 1


def test_broker_down_leaves_the_study_pending_until_it_is_back(demo, broker, django_capture_on_commit_callbacks):
    broker.down = True
    study = receive(demo.establishments["vierzon"].pk, generate_uid(), generate_uid(), 2)
    with django_capture_on_commit_callbacks(execute=True):
        services.studies_reconcile(now=later())
    study.refresh_from_db()
    assert study.status == StudyStatus.COMPLETE and study.case_id and study.routing_enqueued_at is None
    assert services.studies_reconcile(now=later()).pending == (study.pk,)
    broker.down = False
    assert services.studies_reconcile(now=later()).sent == (study.pk,)
    study.refresh_from_db()
    assert study.status == StudyStatus.COMPLETE and study.routing_enqueued_at
    assert broker.routing == [("routing.route_case", [study.case_id])]


def test_late_series_is_attached_flagged_and_not_routed_again(demo, broker, django_capture_on_commit_callbacks):
    site = demo.establishments["vierzon"].pk
    study_uid = generate_uid()
    receive(site, study_uid, generate_uid(), 2)
    with django_capture_on_commit_callbacks(execute=True):
        services.studies_reconcile(now=later())
    late_uid = generate_uid()
    with django_capture_on_commit_callbacks(execute=True):
        study = receive(site, study_uid, late_uid, 2, series_number=9)
        services.studies_reconcile(now=later(120))
    assert study.late_series and study.num_series == 2 and study.num_instances == 4
    assert Series.objects.get(series_uid=late_uid).received_after_completion
    assert study.case.late_images
    assert CaseEvent.objects.filter(case=study.case, kind=CaseEventKind.LATE_IMAGES).count() == 1
    assert TechnicalIncident.objects.filter(kind=IncidentKind.LATE_SERIES, study=study).count() == 1
    assert len(broker.routing) == 1


def test_ultrasound_is_stored_flagged_and_never_routed(demo, broker, django_capture_on_commit_callbacks):
    study = receive(demo.establishments["vierzon"].pk, generate_uid(), generate_uid(), 2, modality="US",
                    sop_class=US_IMAGE_STORAGE)
    assert study.ultrasound
    with django_capture_on_commit_callbacks(execute=True):
        services.studies_reconcile(now=later())
    study.refresh_from_db()
    # Never routed; held by a redirected case so that the site is told (tests/worklist/test_ultrasound_dicom.py).
    assert study.status == StudyStatus.NOT_ROUTED
    assert [name for name, _args in broker.sent if name != "routing.deliver_notification"] == []  # alerts only
    assert study.case is not None and study.case.status == "redirected"


def test_a_sop_instance_uid_is_recorded_once(demo):
    site = demo.establishments["vierzon"].pk
    study_uid, series_uid = generate_uid(), generate_uid()
    meta = meta_of(study_uid=study_uid, series_uid=series_uid)
    now = timezone.now()
    ref = services.study_series_ensure(site_id=site, calling_ae="VIERZON_CT", meta=meta, now=now)
    services.instance_record(ref=ref, meta=meta, rel_path="a", size=1, sha256="a", now=now)
    with pytest.raises(IntegrityError):
        services.instance_record(ref=ref, meta=meta, rel_path="a", size=1, sha256="b", now=now)
    assert Instance.objects.filter(sop_instance_uid=meta.sop_instance_uid).count() == 1
    assert Study.objects.get(study_uid=study_uid).num_instances == 1


def test_an_image_whose_series_is_gone_records_nothing(demo):
    site = demo.establishments["vierzon"].pk
    meta = meta_of(study_uid=generate_uid(), series_uid=generate_uid())
    now = timezone.now()
    ref = services.study_series_ensure(site_id=site, calling_ae="VIERZON_CT", meta=meta, now=now)
    Series.objects.filter(pk=ref.series_id).delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        services.instance_record(ref=ref, meta=meta, rel_path="a", size=1, sha256="a", now=now)
    assert not Instance.objects.filter(sop_instance_uid=meta.sop_instance_uid).exists()
    assert Study.objects.get(pk=ref.study_id).num_instances == 0


def test_outside_a_transaction_each_image_commits_alone_and_a_failure_leaves_nothing(live_demo):
    """The gateway's case, no surrounding transaction (on PostgreSQL: one autocommitted statement)."""
    site = live_demo.establishments["vierzon"].pk
    study_uid, series_uid = generate_uid(), generate_uid()
    first = meta_of(study_uid=study_uid, series_uid=series_uid, number=1)
    now = timezone.now()
    ref = services.study_series_ensure(site_id=site, calling_ae="VIERZON_CT", meta=first, now=now)
    assert services.instance_record(ref=ref, meta=first, rel_path="a", size=1, sha256="a", now=now) is False
    with pytest.raises(IntegrityError):  # the same UID again
        services.instance_record(ref=ref, meta=first, rel_path="b", size=1, sha256="b", now=now)
    second = meta_of(study_uid=study_uid, series_uid=series_uid, number=2)
    services.instance_record(ref=ref, meta=second, rel_path="c", size=1, sha256="c", now=now)
    gone = services.SeriesRef(study_id=ref.study_id, series_id=ref.series_id + 10_000_000)
    third = meta_of(study_uid=study_uid, series_uid=series_uid, number=3)
    with pytest.raises(IntegrityError):  # no such series row: the statement fails whole
        services.instance_record(ref=gone, meta=third, rel_path="d", size=1, sha256="d", now=now)
    assert Study.objects.get(pk=ref.study_id).num_instances == 2
    assert Series.objects.get(pk=ref.series_id).num_instances == 2
    assert sorted(Instance.objects.filter(study_id=ref.study_id).values_list("path", flat=True)) == ["a", "c"]


def test_the_row_commits_while_the_file_flushes_and_is_removed_if_the_disk_fails(live_demo):
    """The gateway's path (no surrounding transaction): the statement and its COMMIT are sent before ``durable``
    waits for the file (the two flushes overlap); the call returns only after both. If ``durable`` raises, the
    row is removed again with its counts: nothing is recorded, and the disk's error is raised."""
    site = live_demo.establishments["vierzon"].pk
    study_uid, series_uid = generate_uid(), generate_uid()
    first = meta_of(study_uid=study_uid, series_uid=series_uid, number=1)
    now = timezone.now()
    ref = services.study_series_ensure(site_id=site, calling_ae="VIERZON_CT", meta=first, now=now)
    waited: list[bool] = []

    def durable():
        waited.append(True)

    services.instance_record(ref=ref, meta=first, rel_path="a", size=1, sha256="a", now=now, durable=durable)
    assert waited == [True]
    assert Instance.objects.filter(sop_instance_uid=first.sop_instance_uid).count() == 1

    second = meta_of(study_uid=study_uid, series_uid=series_uid, number=2)

    def disk_failed():
        raise OSError("disk full")

    with pytest.raises(OSError):
        services.instance_record(ref=ref, meta=second, rel_path="b", size=1, sha256="b", now=now, durable=disk_failed)
    assert not Instance.objects.filter(sop_instance_uid=second.sop_instance_uid).exists()
    assert Study.objects.get(pk=ref.study_id).num_instances == 1
    assert Series.objects.get(pk=ref.series_id).num_instances == 1
    with pytest.raises(IntegrityError):  # a duplicate fails after the wait, and the connection stays usable
        services.instance_record(ref=ref, meta=first, rel_path="c", size=1, sha256="c", now=now, durable=durable)
    assert Series.objects.get(pk=ref.series_id).num_instances == 1

    def exists_already():
        raise FileExistsError("a")

    # A resend of the stored image: the statement fails (same UID) and the file's name exists; the disk's error
    # is the one raised (the gateway resolves it) and the stored row is untouched.
    with pytest.raises(FileExistsError):
        services.instance_record(ref=ref, meta=first, rel_path="a", size=1, sha256="a", now=now,
                                 durable=exists_already)
    assert Instance.objects.filter(sop_instance_uid=first.sop_instance_uid, path="a").count() == 1
    assert Study.objects.get(pk=ref.study_id).num_instances == 1


def test_the_sweep_removes_rows_whose_file_never_reached_the_disk(live_demo):
    """A process killed between an image's commit and its file's flush left a row without a file (the image was
    never acknowledged): the gateway's sweep removes it with its counts, audited and reported; rows with their
    file, and rows too recent to judge, stay; the sweep goes on from where it stopped."""
    from apps.audit.models import AuditEntry

    site = live_demo.establishments["vierzon"].pk
    study_uid, series_uid = generate_uid(), generate_uid()
    now = timezone.now()
    old = now - dt.timedelta(seconds=60)
    metas = [meta_of(study_uid=study_uid, series_uid=series_uid, number=n) for n in (1, 2, 3)]
    ref = services.study_series_ensure(site_id=site, calling_ae="VIERZON_CT", meta=metas[0], now=old)
    start = services.instances_sweep_start()
    for meta, when, path in zip(metas, (old, old, now), ("on-disk", "lost", "in-flight"), strict=True):
        services.instance_record(ref=ref, meta=meta, rel_path=path, size=1, sha256=path, now=when)
    on_disk = {"on-disk"}
    removed, last = services.instances_unstored_remove(exists=on_disk.__contains__, after_id=start, now=now,
                                                       grace_seconds=10, max_removals=5)
    assert removed == [metas[1].sop_instance_uid]
    assert sorted(Instance.objects.filter(study_id=ref.study_id).values_list("path", flat=True)) == [
        "in-flight", "on-disk"]
    assert Study.objects.get(pk=ref.study_id).num_instances == 2
    assert Series.objects.get(pk=ref.series_id).num_instances == 2
    assert TechnicalIncident.objects.filter(study_id=ref.study_id, details__path="lost").exists()
    assert AuditEntry.objects.filter(details__event="unstored_image_removed",
                                     details__sop_instance_uid=metas[1].sop_instance_uid).exists()
    # The recent row stopped the walk: the next sweep, once it is old enough, judges it (its file is there now).
    assert last < Instance.objects.get(path="in-flight").pk
    on_disk.add("in-flight")
    removed, last2 = services.instances_unstored_remove(exists=on_disk.__contains__, after_id=last,
                                                        now=now + dt.timedelta(seconds=60), grace_seconds=10,
                                                        max_removals=5)
    assert removed == [] and last2 == Instance.objects.get(path="in-flight").pk

    # A resend links the missing file between the sweep's look and its lock on the row: the row stays (the resend's
    # acknowledgement relies on it).
    fourth = meta_of(study_uid=study_uid, series_uid=series_uid, number=4)
    services.instance_record(ref=ref, meta=fourth, rel_path="resent", size=1, sha256="r", now=old)
    looks: list[str] = []

    def linked_meanwhile(path: str) -> bool:
        looks.append(path)
        return path != "resent" or looks.count("resent") > 1

    removed, _ = services.instances_unstored_remove(exists=linked_meanwhile, after_id=last2, now=now,
                                                    grace_seconds=10, max_removals=5)
    assert removed == [] and looks.count("resent") == 2
    assert Instance.objects.filter(path="resent").exists()


def test_a_study_is_routed_only_once_routing_took_its_case_in_hand(demo, broker, django_capture_on_commit_callbacks):
    from django.db import DatabaseError

    from apps.routing.models import RoutingDecision
    from apps.routing.services import case_route, unassigned_reconcile
    from apps.worklist.models import AssignmentState
    from tests.support.routing_failure import routing_broken

    study = receive(demo.establishments["vierzon"].pk, generate_uid(), generate_uid(), 2)
    with django_capture_on_commit_callbacks(execute=True):
        services.studies_reconcile(now=later())
    study.refresh_from_db()
    case = study.case
    with routing_broken():
        with pytest.raises(DatabaseError):
            case_route(case_id=case.pk)  # the worker's message: the error is raised for the task to retry
        assert unassigned_reconcile() == 1  # the reconciler's retry fails too, without raising
    study.refresh_from_db()
    case.refresh_from_db()
    assert study.status == StudyStatus.COMPLETE and study.routing_enqueued_at
    assert case.assignment_state == AssignmentState.UNASSIGNED and case.assigned_to is None
    assert not RoutingDecision.objects.filter(case=case).exists()  # the failed attempts left nothing behind
    # Recorded once for the run of failures, with the reason, on the timeline and as an incident.
    [failure] = CaseEvent.objects.filter(case=case, kind=CaseEventKind.INCIDENT)
    assert "Automatic routing failed" in failure.message and "no_such_function" in failure.message
    assert failure.data["trigger"] == "route"
    [incident] = TechnicalIncident.objects.filter(case=case, source="routing")
    assert "no_such_function" in incident.summary

    assert unassigned_reconcile() == 1  # routing works again: the reconciler assigns the case
    study.refresh_from_db()
    case.refresh_from_db()
    assert case.assignment_state == AssignmentState.OFFERED and case.assigned_to is not None
    assert study.status == StudyStatus.ROUTED
    assert unassigned_reconcile() == 0 and len(broker.routing) == 1


def test_a_study_whose_case_is_already_in_hand_is_routed_by_its_message(demo, broker,
                                                                          django_capture_on_commit_callbacks):
    from apps.routing.services import case_route
    from apps.worklist.models import AssignmentState, CaseStatus
    from tests.factories.worklist import make_case

    request = case_route(case_id=make_case(demo, accession_number="ACC-0001").pk)  # offered for validation
    assert request.assignment_state == AssignmentState.OFFERED
    study = receive(demo.establishments["vierzon"].pk, generate_uid(), generate_uid(), 2)
    with django_capture_on_commit_callbacks(execute=True):
        services.studies_reconcile(now=later())
    study.refresh_from_db()
    assert study.case_id == request.pk and study.case.status == CaseStatus.AWAITING_READING
    assert study.status == StudyStatus.COMPLETE
    case_route(case_id=request.pk)  # the message: nothing to assign, the case already has its radiologist
    study.refresh_from_db()
    assert study.status == StudyStatus.ROUTED


def test_studies_marked_routed_before_the_change_go_back_to_awaiting_assignment(demo, broker):
    """The data migration, run forward on today's rows."""
    import importlib

    from django.apps import apps as django_apps

    from apps.worklist.models import AssignmentState
    from tests.factories.worklist import make_case

    migration = importlib.import_module("apps.studies.migrations.0003_study_routed_means_assigned")
    site = demo.establishments["vierzon"].pk
    waiting, offered = make_case(demo), make_case(demo)
    Case = django_apps.get_model("worklist", "Case")
    Case.objects.filter(pk=offered.pk).update(assignment_state=AssignmentState.OFFERED,
                                              assigned_to=demo.users["radiologue"])
    studies = {}
    for name, case in (("waiting", waiting), ("offered", offered)):
        studies[name] = receive(site, generate_uid(), generate_uid(), 1)
        Study.objects.filter(pk=studies[name].pk).update(case=case, status=StudyStatus.ROUTED,
                                                         routing_enqueued_at=timezone.now())
    migration.routed_only_when_handled(django_apps, None)
    assert Study.objects.get(pk=studies["waiting"].pk).status == StudyStatus.COMPLETE
    assert Study.objects.get(pk=studies["offered"].pk).status == StudyStatus.ROUTED
    migration.routed_when_sent(django_apps, None)
    assert Study.objects.get(pk=studies["waiting"].pk).status == StudyStatus.ROUTED


def test_the_sweep_removes_nothing_when_the_storage_root_is_not_the_right_one(live_demo):
    """More rows without a file than images can be in flight is a volume not mounted or a wrong storage root, not
    a crash: nothing is removed, a critical incident says so, and the walk goes on."""
    site = live_demo.establishments["vierzon"].pk
    study_uid, series_uid = generate_uid(), generate_uid()
    old = timezone.now() - dt.timedelta(seconds=60)
    metas = [meta_of(study_uid=study_uid, series_uid=series_uid, number=n) for n in range(1, 5)]
    ref = services.study_series_ensure(site_id=site, calling_ae="VIERZON_CT", meta=metas[0], now=old)
    start = services.instances_sweep_start()
    for i, meta in enumerate(metas):
        services.instance_record(ref=ref, meta=meta, rel_path=f"p{i}", size=1, sha256=f"s{i}", now=old)
    removed, last = services.instances_unstored_remove(exists=lambda path: False, after_id=start, now=timezone.now(),
                                                       grace_seconds=10, max_removals=3)
    assert removed == [] and Instance.objects.filter(study_id=ref.study_id).count() == 4
    assert last == Instance.objects.filter(study_id=ref.study_id).order_by("-pk").first().pk
    incident = TechnicalIncident.objects.filter(severity="critical", summary__contains="storage root").get()
    assert incident.details["paths"][:2] == ["p0", "p1"]
