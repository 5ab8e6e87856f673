"""Priors from the site PACS against a real one: Debian's Orthanc plays the site's PACS (two earlier studies of
the patient, one of another patient), our real gateway receives, a real Celery worker queries and retrieves.

The case's study arrives by C-STORE from the site's modality; the platform C-FINDs the PACS (study root, by the
local patient id and its issuer), lists the two priors (never the other patient's), C-MOVEs the relevant one (CT,
same body part) to the gateway by itself and stores it as a prior of the case (not a new case), retrieves the other
on demand from the case page, writes the audit trail, opens both in OHIF, and hides them from another
establishment. A PACS that cannot reach the platform gives its prior by C-GET."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from pydicom import dcmread
from pydicom.uid import MRImageStorage, generate_uid

from apps.accounts.authorization import ACCESS_REFUSED
from apps.audit.models import AuditEntry
from apps.regions.models import DicomNode
from apps.studies.models import Study, StudyStatus
from apps.worklist.models import Case
from apps.worklist.priors.models import PriorQuery, PriorQueryState, PriorState, PriorStudy
from apps.worklist.services import case_create
from tests.factories.dicom import make_instance
from tests.factories.worklist import case_input
from tests.integration.test_gateway import echo, gateway, storescu
from tests.support.processes import celery_worker_cmd, free_port, running, wait_until

ORTHANC = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(ORTHANC is None, reason="Debian orthanc is required (plays the site PACS)"),
              pytest.mark.skipif(not shutil.which("storescu"), reason="Debian dcmtk is required"),
              pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL and Redis (a worker)")]

PACS_AET = "SITEPACS"
PATIENT = "PAT-0001"


def _instances(study_uid: str, *, n: int, patient: str, date: str | None, description: str, modality: str = "CT",
               body: str = "HEAD") -> list[Any]:
    series_uid = generate_uid()
    out = []
    for i in range(1, n + 1):
        kw = {"sop_class": MRImageStorage} if modality == "MR" else {}
        ds = make_instance(study_uid=study_uid, series_uid=series_uid, number=i, modality=modality, patient_id=patient,
                           accession=f"ACC-{study_uid[-6:]}", description=description, **kw)
        if date is not None:  # a prior's date; None: acquired now, as the factory dates it (tonight's study)
            ds.StudyDate, ds.SeriesDate = date, date
        ds.BodyPartExamined = body
        out.append(ds)
    return out


def _bytes(ds: Any) -> bytes:
    bio = BytesIO()
    ds.save_as(bio, enforce_file_format=True)
    return bio.getvalue()


def _orthanc_post(http_port: int, ds: Any) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{http_port}/instances", data=_bytes(ds), method="POST",
                                 headers={"Content-Type": "application/dicom"})
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310  (loopback, our own Orthanc)
        assert r.status == 200


@pytest.fixture
def orthanc(tmp_path: Path) -> Any:
    """Started by the test once the gateway's port is known (Orthanc must know where to C-MOVE)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(gateway_port: int) -> tuple[int, int]:
        dicom, http = free_port(), free_port()
        work = tmp_path / "orthanc"
        work.mkdir()
        cfg = {"Name": "site-pacs", "StorageDirectory": str(work / "storage"), "IndexDirectory": str(work / "index"),
               "DicomAet": PACS_AET, "DicomPort": dicom, "HttpPort": http, "RemoteAccessAllowed": False,
               "AuthenticationEnabled": False, "DicomCheckCalledAet": False, "Plugins": [],
               "DicomModalities": {"pds": [settings.PDS_DICOM_AET, "127.0.0.1", gateway_port]}}
        (work / "orthanc.json").write_text(json.dumps(cfg))
        assert ORTHANC is not None
        procs.append(subprocess.Popen([ORTHANC, str(work / "orthanc.json")], stdout=open(tmp_path / "orthanc.log", "wb"),
                                      stderr=subprocess.STDOUT))
        wait_until(lambda: echo(dicom, aec=PACS_AET).returncode == 0, timeout=30, message="Orthanc ready")
        return dicom, http

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def _client(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_priors_queried_listed_retrieved_and_kept_to_the_case(live_demo: Any, process_env: dict[str, str],
                                                             tmp_path: Path, orthanc: Any) -> None:
    from pds_platform.celery import app

    app.control.purge()
    vierzon = live_demo.establishments["vierzon"]
    node = DicomNode.objects.create(establishment=vierzon, ae_title=PACS_AET, allowed_hosts="127.0.0.1/32",
                                    description="Site PACS (Orthanc)", qr_enabled=True, qr_ae_title=PACS_AET,
                                    qr_host="127.0.0.1", qr_port=1)  # the port is set once Orthanc runs
    env = {**process_env, "PDS_PRIORS_TIMEOUT": "5"}
    with gateway(env, tmp_path) as gw:
        pacs_port, http_port = orthanc(gw.port)
        DicomNode.objects.filter(pk=node.pk).update(qr_port=pacs_port)
        prior_ct, prior_mr, other = generate_uid(), generate_uid(), generate_uid()
        for ds in (_instances(prior_ct, n=2, patient=PATIENT, date="20250310", description="CT head 2025")
                   + _instances(prior_mr, n=2, patient=PATIENT, date="20240105", description="MR brain 2024",
                                modality="MR")
                   + _instances(other, n=1, patient="PAT-9999", date="20250101", description="Other patient")):
            _orthanc_post(http_port, ds)
        case, _ = case_create(site_id=vierzon.pk, data=case_input(local_patient_id=PATIENT, urgency="urgent"),
                              requested_by_id=live_demo.users["urgentiste"].pk)
        queues = f"{settings.CELERY_TASK_DEFAULT_QUEUE},{settings.ROUTING_QUEUE}"
        log = tmp_path / "worker.log"
        with running(celery_worker_cmd("-n", "priors@%h", "-Q", queues), env, log,
                     ready=lambda: "ready." in log.read_text(errors="replace"), timeout=60):
            current = generate_uid()
            files = []
            for i, ds in enumerate(_instances(current, n=2, patient=PATIENT, date=None,
                                              description="CT head tonight")):
                path = tmp_path / f"current-{i}.dcm"
                path.write_bytes(_bytes(ds))
                files.append(path)
            assert storescu(gw.port, files).returncode == 0
            wait_until(lambda: Study.objects.filter(study_uid=current, case=case).exists(), timeout=30,
                       message="the current study attached to the case")
            wait_until(lambda: PriorQuery.objects.filter(case=case, state__in=[PriorQueryState.DONE,
                                                                               PriorQueryState.FAILED]).exists(),
                       timeout=30, message="the site PACS queried")
            query = PriorQuery.objects.get(case=case)
            assert query.state == PriorQueryState.DONE, (query.error, log.read_text()[-3000:])
            listed = {p.study_uid: p for p in PriorStudy.objects.filter(case=case)}
            assert set(listed) == {prior_ct, prior_mr}  # not the other patient's, not the current study
            assert listed[prior_ct].relevant and not listed[prior_mr].relevant
            assert listed[prior_mr].description == "MR brain 2024" and listed[prior_mr].modalities == "MR"
            # The relevant one comes by itself, from the site PACS's AE, and is a prior of the case.
            wait_until(lambda: PriorStudy.objects.filter(pk=listed[prior_ct].pk, state=PriorState.RETRIEVED).exists(),
                       timeout=40, message="the relevant prior retrieved")
            stored = Study.objects.get(study_uid=prior_ct)
            assert stored.status == StudyStatus.PRIOR and stored.case_id is None and stored.calling_ae == PACS_AET
            assert stored.num_instances == 2
            assert Case.objects.count() == 1
            assert PriorStudy.objects.get(pk=listed[prior_mr].pk).state == PriorState.AVAILABLE
            # The radiologist sees both on the case page and asks for the other one.
            radiologist = _client(live_demo.users["radiologue"])
            Case.objects.filter(pk=case.pk).update(assigned_to=live_demo.users["radiologue"])
            page = radiologist.get(f"/worklist/c/{case.public_id}/").content.decode()
            assert "CT head 2025" in page and "MR brain 2024" in page and "Other patient" not in page
            r = radiologist.post(f"/worklist/c/{case.public_id}/do/prior_retrieve", {"prior": listed[prior_mr].pk})
            assert r.status_code == 302
            wait_until(lambda: PriorStudy.objects.filter(pk=listed[prior_mr].pk, state=PriorState.RETRIEVED).exists(),
                       timeout=40, message="the prior retrieved on demand")
        assert not Study.objects.filter(study_uid=other).exists()
        assert Case.objects.count() == 1
    # The audit trail: the query, each retrieval (asked, moved), each prior stored.
    trail = AuditEntry.objects.filter(object_type="worklist.case", object_id=str(case.pk),
                                      action__in=["query", "retrieve"]).order_by("id")
    events = [(e.action, e.details.get("event")) for e in trail]
    assert events.count(("query", "priors_query")) == 1
    assert events.count(("retrieve", "prior_retrieve_request")) == 2
    assert events.count(("retrieve", "prior_move")) == 2
    assert any(e.actor_username == "radiologue" for e in trail)
    assert AuditEntry.objects.filter(action="receive", details__event="prior_stored").count() == 2
    # The viewer opens the case's study and both priors; DICOMweb serves the priors to the radiologist.
    uids = [current, prior_ct, prior_mr]
    from apps.worklist import ohif

    if ohif.ohif_installed():
        r = radiologist.get(f"/worklist/c/{case.public_id}/ohif/")
        query = parse_qs(urlparse(r["Location"]).query)
        assert query["StudyInstanceUIDs"][0].split(",") == uids
        assert query["hangingProtocolId"] == ["@ohif/hpCompare"]  # the current study beside the latest prior
    else:
        from apps.worklist.priors.selectors import prior_study_uids

        assert [current, *prior_study_uids(case.pk)] == uids
    found = radiologist.get("/dicomweb/studies", {"PatientID": PATIENT}).json()
    assert {s["0020000D"]["Value"][0] for s in found} == set(uids)
    # Another establishment: neither the case page nor the priors' images.
    blois = _client(live_demo.users["urgentiste.blois"])
    refused = AuditEntry.objects.filter(action=ACCESS_REFUSED).count()
    assert blois.get(f"/worklist/c/{case.public_id}/").status_code == 404
    assert blois.get(f"/dicomweb/studies/{prior_ct}/metadata").status_code == 404
    r = blois.get("/dicomweb/studies", {"PatientID": PATIENT})
    assert r.status_code in (200, 204) and (r.status_code == 204 or r.json() == [])
    assert AuditEntry.objects.filter(action=ACCESS_REFUSED).count() >= refused + 2


INS_A, INS_B = "255081416802538", "180017512345689"


@pytest.mark.django_db
def test_by_ins_orthanc_answers_every_patient_and_only_the_patients_studies_are_kept(demo: Any, orthanc: Any) -> None:
    """Orthanc does not match on the Other Patient IDs Sequence: asked by INS it answers every study it holds. The
    answers are the patient's only when they carry the INS: the other patient's study is never listed. In-process
    (the query step of the worker, no gateway: nothing is retrieved)."""
    from apps.worklist.priors import services
    from apps.worklist.priors.rules import INS_ISSUER

    pacs_port, http_port = orthanc(1)  # no C-MOVE here: the destination's port does not matter
    prior_a, prior_b = generate_uid(), generate_uid()
    for uid, patient, ins in ((prior_a, "IPP-A", INS_A), (prior_b, "IPP-B", INS_B)):
        for ds in _instances(uid, n=1, patient=patient, date="20250310", description=f"CT {patient}"):
            ds.OtherPatientIDsSequence[0].PatientID = ins
            ds.OtherPatientIDsSequence[0].IssuerOfPatientID = INS_ISSUER
            _orthanc_post(http_port, ds)
    vierzon = demo.establishments["vierzon"]
    DicomNode.objects.create(establishment=vierzon, ae_title=PACS_AET, allowed_hosts="127.0.0.1/32", qr_enabled=True,
                             qr_ae_title=PACS_AET, qr_host="127.0.0.1", qr_port=pacs_port, qr_ins_in_other_ids=True)
    case, _ = case_create(site_id=vierzon.pk, data=case_input(local_patient_id="IPP-A"),
                          requested_by_id=demo.users["urgentiste"].pk)
    Case.objects.filter(pk=case.pk).update(patient_ins=INS_A)  # the identity checks are not this test's business
    Study.objects.create(study_uid=generate_uid(), site=vierzon, case=case, patient_id="IPP-A", modality="CT",
                         status=StudyStatus.COMPLETE)
    assert services.priors_query_request(case_id=case.pk)
    assert services.priors_query_run(case_id=case.pk) == "done"
    query = PriorQuery.objects.get(case=case)
    assert query.matched_by == "ins"
    assert list(PriorStudy.objects.filter(case=case).values_list("study_uid", flat=True)) == [prior_a]
    # The PACS stops answering: the next query fails with the reason, audited, and the page still shows.
    DicomNode.objects.filter(qr_ae_title=PACS_AET).update(qr_port=free_port())
    PriorQuery.objects.filter(case=case).update(state=PriorQueryState.PENDING)
    assert services.priors_query_run(case_id=case.pk) == "failed"
    query.refresh_from_db()
    assert query.state == PriorQueryState.FAILED and query.error.startswith("unreachable")
    assert AuditEntry.objects.filter(action="query", object_id=str(case.pk), details__outcome="failed").exists()


def test_a_pacs_that_cannot_reach_the_platform_gives_the_prior_by_c_get(live_demo: Any, process_env: dict[str, str],
                                                                        tmp_path: Path, orthanc: Any) -> None:
    """The site PACS knows the gateway's AE title at an address it cannot reach (a firewall between the site and the
    platform): its C-MOVE fails, the worker asks again by C-GET on its own association, the images come back as the
    PACS holds them (JPEG Lossless stays JPEG Lossless), are stored by the gateway's ingest service and completed by
    the gateway into the case's prior; the audit trail says how and why."""
    from pds_platform.celery import app
    from tests.factories.dicom import JPEG_LOSSLESS_SV1, jpeg_lossless_compress

    app.control.purge()
    vierzon = live_demo.establishments["vierzon"]
    with gateway(process_env, tmp_path) as gw:
        pacs_port, http_port = orthanc(free_port())  # where the PACS believes the gateway is: nobody listens
        prior = generate_uid()
        for i, ds in enumerate(_instances(prior, n=3, patient=PATIENT, date="20250310", description="CT head 2025")):
            path = tmp_path / f"prior-{i}.dcm"
            path.write_bytes(_bytes(ds))
            if i == 0:
                jpeg_lossless_compress(path)
            req = urllib.request.Request(f"http://127.0.0.1:{http_port}/instances", data=path.read_bytes(),
                                         method="POST", headers={"Content-Type": "application/dicom"})
            with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310  (loopback, our own Orthanc)
                assert r.status == 200
        compressed = str(dcmread(tmp_path / "prior-0.dcm").SOPInstanceUID)
        DicomNode.objects.create(establishment=vierzon, ae_title=PACS_AET, allowed_hosts="127.0.0.1/32",
                                 qr_enabled=True, qr_ae_title=PACS_AET, qr_host="127.0.0.1", qr_port=pacs_port)
        case, _ = case_create(site_id=vierzon.pk, data=case_input(local_patient_id=PATIENT),
                              requested_by_id=live_demo.users["urgentiste"].pk)
        Study.objects.create(study_uid=generate_uid(), site=vierzon, case=case, patient_id=PATIENT, modality="CT",
                             body_part="HEAD", patient_id_issuer="CHVIERZON", status=StudyStatus.COMPLETE)
        queues = f"{settings.CELERY_TASK_DEFAULT_QUEUE},{settings.ROUTING_QUEUE}"
        log = tmp_path / "worker.log"
        env = {**process_env, "PDS_PRIORS_TIMEOUT": "5"}
        with running(celery_worker_cmd("-n", "priors-get@%h", "-Q", queues), env, log,
                     ready=lambda: "ready." in log.read_text(errors="replace"), timeout=60):
            from apps.worklist.priors.services import priors_query_request

            assert priors_query_request(case_id=case.pk)
            wait_until(lambda: PriorStudy.objects.filter(case=case, study_uid=prior,
                                                         state__in=[PriorState.RETRIEVED, PriorState.FAILED]).exists(),
                       timeout=60, message="the prior retrieved or failed")
        listed = PriorStudy.objects.get(case=case, study_uid=prior)
        assert listed.state == PriorState.RETRIEVED, (listed.error, log.read_text()[-3000:])
        stored = Study.objects.get(study_uid=prior)
        assert stored.status == StudyStatus.PRIOR and stored.case_id is None and stored.num_instances == 3
        assert stored.calling_ae == PACS_AET and stored.site_id == vierzon.pk
        syntaxes = dict(stored.instances.values_list("sop_instance_uid", "transfer_syntax_uid"))
        assert syntaxes[compressed] == JPEG_LOSSLESS_SV1
        assert all((gw.root / p).exists() for p in stored.instances.values_list("path", flat=True))
    got = AuditEntry.objects.get(action="retrieve", object_id=str(case.pk), details__event="prior_get")
    assert got.details["completed"] == 3 and "0xC000" in got.details["move_refused"]
    assert not AuditEntry.objects.filter(action="retrieve", details__event="prior_move").exists()
    assert AuditEntry.objects.filter(action="receive", details__event="prior_stored").count() == 1
    assert Case.objects.count() == 1
