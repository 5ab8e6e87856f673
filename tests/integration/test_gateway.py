"""The DICOM gateway as a real process (``manage.py run_gateway``, 2 worker processes) on the test database,
with Debian dcmtk (``echoscu``/``storescu``) as the sender and the test Redis as the broker."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings
from pydicom import dcmread
from pydicom.uid import generate_uid

from apps.audit.models import AuditEntry
from apps.regions.models import DicomNode
from apps.studies.models import Instance, QuarantinedInstance, Series, Study, StudyStatus
from apps.traceability.models import IncidentKind, TechnicalIncident
from apps.worklist.models import Case, CaseEvent, CaseEventKind
from dicom_gateway.storage import file_sha256
from tests.factories.dicom import SeriesSpec, make_instance, write_study
from tests.support.processes import free_port, manage_cmd, running, wait_until

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not shutil.which("storescu"), reason="Debian dcmtk is required")]

AET = "PDS_GATEWAY"
SENDER = "VIERZON_CT"


def dcmtk_env() -> dict[str, str]:
    return {**os.environ, "TCP_NODELAY": "1"}


def echo(port: int, *, aet: str = SENDER, aec: str = AET) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["echoscu", "-v", "-aet", aet, "-aec", aec, "127.0.0.1", str(port)], env=dcmtk_env(),
                          capture_output=True, text=True, timeout=30)


@dataclass
class Gateway:
    port: int
    proc: subprocess.Popen[bytes]
    root: Path
    log: Path


@contextmanager
def gateway(env: dict[str, str], tmp_path: Path, name: str = "gateway", **extra: str) -> Iterator[Gateway]:
    port = free_port()
    genv = {**env, "PDS_DICOM_PORT": str(port), "PDS_DICOM_AET": AET, "PDS_DICOM_QUIET_SECONDS": "1",
            "PDS_DICOM_WORKERS": "2", "PDS_DICOM_MIN_FREE_MB": "50", **extra}
    log = tmp_path / f"{name}.log"
    with running(manage_cmd("run_gateway"), genv, log, ready=lambda: echo(port).returncode == 0,
                 timeout=90) as proc:
        yield Gateway(port=port, proc=proc, root=Path(genv["PDS_DICOM_STORAGE_ROOT"]), log=log)


@dataclass
class StoreRun:
    returncode: int
    output: str
    responses: dict[str, str]  # file name -> status text of its C-STORE response

    def succeeded(self) -> set[str]:
        return {f for f, s in self.responses.items() if s == "Success"}


def storescu(port: int, files: list[Path], *, aet: str = SENDER, background: bool = False,
             log: Path | None = None) -> StoreRun | subprocess.Popen[bytes]:
    cmd = ["storescu", "-v", "-nh", "-aet", aet, "-aec", AET, "127.0.0.1", str(port), *map(str, files)]
    if background:
        assert log is not None
        return subprocess.Popen(cmd, env=dcmtk_env(), stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    r = subprocess.run(cmd, env=dcmtk_env(), capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    return StoreRun(r.returncode, out, store_responses(out))


def store_responses(output: str) -> dict[str, str]:
    responses, current = {}, None
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


def routing_messages() -> list[bytes]:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL).lrange(settings.ROUTING_QUEUE, 0, -1)


def routed_case_ids(raw_messages: list[bytes]) -> list[int]:
    ids = []
    for raw in raw_messages:
        headers = json.loads(raw).get("headers", {})
        if headers.get("task") == "routing.route_case":
            ids.append(int(headers["argsrepr"].strip("[]() ,")))
    return ids


def new_routing_messages(before: list[bytes]) -> list[int]:
    seen = set(before)
    return routed_case_ids([m for m in routing_messages() if m not in seen])


def assert_stored_like(original: Path, root: Path) -> None:
    ds = dcmread(original)
    row = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    stored = root / row.path
    assert stored.exists(), row.path
    assert file_sha256(stored) == row.sha256 and stored.stat().st_size == row.size
    assert dcmread(stored) == ds  # same data elements as sent (file meta aside)


def dcm_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.dcm") if "quarantine" not in p.parts]


def bad_files(directory: Path, study_uid: str) -> list[Path]:
    """Files dcmtk sends but the gateway must refuse: a malformed UID, truncated pixels, no Study UID."""
    directory.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    malformed = make_instance(study_uid=study_uid, series_uid=series_uid, number=90)
    malformed.StudyInstanceUID = "1.2.ABC/../../x"
    truncated = make_instance(study_uid=study_uid, series_uid=series_uid, number=91)
    truncated.PixelData = truncated.PixelData[:100]
    no_uid = make_instance(study_uid=study_uid, series_uid=series_uid, number=92)
    del no_uid.StudyInstanceUID
    paths = []
    for name, ds in (("bad_malformed.dcm", malformed), ("bad_truncated.dcm", truncated), ("bad_no_uid.dcm", no_uid)):
        ds.save_as(directory / name, enforce_file_format=True)
        paths.append(directory / name)
    return paths


def test_echo_and_only_known_senders_from_their_hosts(live_demo, process_env, tmp_path):
    study_uid, files = write_study(tmp_path / "study", [SeriesSpec(1, 2)])
    with gateway(process_env, tmp_path) as gw:
        ok = echo(gw.port)
        assert ok.returncode == 0 and "Echo Response (Success)" in ok.stdout + ok.stderr
        unknown = echo(gw.port, aet="NOBODY")
        assert unknown.returncode != 0 and "Calling AE Title Not Recognized" in unknown.stdout + unknown.stderr
        wrong_called = echo(gw.port, aec="SOMEONE_ELSE")
        assert wrong_called.returncode != 0
        assert "Called AE Title Not Recognized" in wrong_called.stdout + wrong_called.stderr
        DicomNode.objects.filter(ae_title=SENDER).update(allowed_hosts="192.0.2.0/24")  # not this machine
        wrong_host = storescu(gw.port, files)
        assert wrong_host.succeeded() == set() and "Association Rejected" in wrong_host.output
    assert not Instance.objects.exists() and not dcm_files(gw.root)
    refused = AuditEntry.objects.filter(action="security", channel="gateway")
    assert sorted(e.details["calling_ae"] for e in refused) == ["NOBODY", SENDER, SENDER]
    assert TechnicalIncident.objects.filter(kind=IncidentKind.ASSOCIATION_REFUSED, source="gateway").count() == 3


def test_study_received_completed_routed_and_duplicates_late_series(live_demo, process_env, tmp_path):
    study_uid, good = write_study(tmp_path / "study", [SeriesSpec(1, 10), SeriesSpec(2, 10, "Coronal")])
    bad = bad_files(tmp_path / "bad", study_uid)
    before = routing_messages()
    with gateway(process_env, tmp_path) as gw:
        # Refused files in the middle of the association: the images after them are still received.
        run = storescu(gw.port, good[:10] + bad + good[10:])
        assert run.succeeded() == {p.name for p in good}, run.output[-3000:]
        assert all(run.responses[p.name] != "Success" for p in bad)
        # No worker here: the routing message is sent (routing_enqueued_at) and the study, whose case nobody
        # has yet, stays complete, awaiting assignment (it becomes routed only once routing assigns its case).
        study = wait_until(lambda: Study.objects.filter(study_uid=study_uid, status=StudyStatus.COMPLETE,
                                                        routing_enqueued_at__isnull=False).first(),
                           timeout=30, message="study complete and its routing message sent")
        assert (study.num_series, study.num_instances) == (2, 20)
        assert Series.objects.filter(study=study).count() == 2 and Instance.objects.count() == 20
        for f in good:
            assert_stored_like(f, gw.root)
        assert len(dcm_files(gw.root)) == 20 and not list((gw.root / ".incoming").iterdir())
        assert TechnicalIncident.objects.filter(kind=IncidentKind.FILE_REJECTED).count() == 3
        assert AuditEntry.objects.filter(action="receive", channel="gateway", object_id=str(study.pk)).count() == 1
        case = Case.objects.get(pk=study.case_id)
        assert case.origin == "dicom" and study.routing_enqueued_at is not None
        assert new_routing_messages(before) == [case.pk]

        # The same images again: acknowledged, nothing new recorded, the study untouched (so never re-routed).
        again = storescu(gw.port, good)
        assert again.succeeded() == {p.name for p in good}
        assert Instance.objects.count() == 20
        assert Study.objects.get(pk=study.pk).last_received_at == study.last_received_at

        # Same SOP Instance UID, different content: original untouched, the copy quarantined, an incident.
        original = Instance.objects.get(sop_instance_uid=dcmread(good[0]).SOPInstanceUID)
        original_bytes = (gw.root / original.path).read_bytes()
        changed = dcmread(good[0])
        changed.PixelData = bytes(len(changed.PixelData))
        changed.save_as(tmp_path / "conflict.dcm")
        conflict = storescu(gw.port, [tmp_path / "conflict.dcm"])
        assert conflict.succeeded() == {"conflict.dcm"}
        assert (gw.root / original.path).read_bytes() == original_bytes and Instance.objects.count() == 20
        q = QuarantinedInstance.objects.get(sop_instance_uid=original.sop_instance_uid)
        assert (gw.root / q.path).exists() and q.sha256 != original.sha256
        assert TechnicalIncident.objects.filter(kind=IncidentKind.DUPLICATE_CONFLICT).count() == 1

        # A series after completion: same study, flagged to whoever holds the case, not routed again.
        _, late = write_study(tmp_path / "late", [SeriesSpec(3, 3, "Late")], study_uid=study_uid)
        assert storescu(gw.port, late).succeeded() == {p.name for p in late}
        wait_until(lambda: Case.objects.get(pk=case.pk).late_images, timeout=20, message="case flagged")
        study.refresh_from_db()
        assert study.late_series and study.num_series == 3 and study.num_instances == 23
        assert Series.objects.get(study=study, number=3).received_after_completion
        assert CaseEvent.objects.filter(case=case, kind=CaseEventKind.LATE_IMAGES).count() == 1
        assert Study.objects.count() == 1
    assert new_routing_messages(before) == [case.pk]


def test_sigkill_mid_study_loses_no_acknowledged_image(live_demo, process_env, tmp_path):
    study_uid, files = write_study(tmp_path / "study", [SeriesSpec(1, 100)], rows=64, cols=64)
    root = Path(process_env["PDS_DICOM_STORAGE_ROOT"])
    with gateway(process_env, tmp_path, name="gateway-1") as gw:
        sender = storescu(gw.port, files, background=True, log=tmp_path / "storescu-1.log")
        wait_until(lambda: Instance.objects.count() >= 20, timeout=60, interval=0.02, message="20 images in")
        os.killpg(gw.proc.pid, signal.SIGKILL)  # the parent and its worker processes, mid-study
        gw.proc.wait(timeout=10)
        sender.wait(timeout=60)
    acknowledged = {f for f, s in store_responses((tmp_path / "storescu-1.log").read_text()).items() if s == "Success"}
    assert 10 <= len(acknowledged) < len(files), "the gateway must be killed mid-study"
    for f in files:
        if f.name in acknowledged:
            assert_stored_like(f, root)

    # A row is committed while its file is flushed: a process killed between the two left a row without a file
    # (never acknowledged). The restarted gateway's sweep removes such rows once older than the grace period.
    with gateway(process_env, tmp_path, name="gateway-2", PDS_DICOM_UNSTORED_GRACE_SECONDS="1") as gw:
        wait_until(lambda: all((root / p).exists() for p in Instance.objects.values_list("path", flat=True)),
                   timeout=30, message="no row without its file")
        for row in Instance.objects.all():  # every row has its durable file
            assert file_sha256(root / row.path) == row.sha256
        resend = storescu(gw.port, files)
        assert resend.succeeded() == {f.name for f in files}, resend.output[-3000:]
    assert Instance.objects.count() == len(files)
    assert Instance.objects.values("sop_instance_uid").distinct().count() == len(files)
    assert Study.objects.get(study_uid=study_uid).num_instances == len(files)
    for f in files:
        assert_stored_like(f, root)
    assert len(dcm_files(root)) == len(files) and not list((root / ".incoming").iterdir())


def test_storage_threshold_refuses_with_out_of_resources(live_demo, process_env, tmp_path):
    _, files = write_study(tmp_path / "study", [SeriesSpec(1, 3)])
    with gateway(process_env, tmp_path, PDS_DICOM_MIN_FREE_MB=str(10**9)) as gw:
        run = storescu(gw.port, files)
        assert run.succeeded() == set() and len(run.responses) == 3, run.output[-3000:]
        assert all(s == "Refused: OutOfResources" for s in run.responses.values()), run.responses
        ok = echo(gw.port)  # the gateway itself is fine
        assert ok.returncode == 0
    assert not Instance.objects.exists() and not Study.objects.exists()
    assert not dcm_files(gw.root) and not list((gw.root / ".incoming").iterdir())
    assert TechnicalIncident.objects.filter(kind=IncidentKind.STORAGE_FULL).count() == 1


def test_broker_down_then_back_the_study_is_routed(live_demo, process_env, tmp_path):
    study_uid, files = write_study(tmp_path / "study", [SeriesSpec(1, 3)])
    before = routing_messages()
    closed = f"redis://127.0.0.1:{free_port()}/1"  # nothing listens there: the broker is down
    with gateway(process_env, tmp_path, name="gateway-nobroker", CELERY_BROKER_URL=closed) as gw:
        assert storescu(gw.port, files).succeeded() == {f.name for f in files}
        study = wait_until(lambda: Study.objects.filter(study_uid=study_uid, status=StudyStatus.COMPLETE,
                                                        case__isnull=False).first(),
                           timeout=30, message="study complete with its case")
        wait_until(lambda: "routing message for study" in gw.log.read_text(), timeout=30,
                   message="a failed routing send")
        pending = Study.objects.get(pk=study.pk)
        assert pending.status == StudyStatus.COMPLETE and pending.routing_enqueued_at is None
    assert new_routing_messages(before) == []
    with gateway(process_env, tmp_path, name="gateway-broker"):
        wait_until(lambda: Study.objects.get(pk=study.pk).routing_enqueued_at is not None, timeout=30,
                   message="routing message sent once the broker is back")
    assert Study.objects.get(pk=study.pk).status == StudyStatus.COMPLETE  # no worker: not assigned, not routed
    assert new_routing_messages(before) == [study.case_id]


def make_certificates(directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=PDS test CA")
    (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                f"/CN={name}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", "-extfile", "ext.cnf")
    return {n: directory / n for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl is required")
def test_tls_port_requires_a_client_certificate_and_nodes_may_require_tls(live_demo, process_env, tmp_path):
    certs = make_certificates(tmp_path / "certs")
    tls_port = free_port()
    tls_env = {"PDS_DICOM_TLS_PORT": str(tls_port), "PDS_DICOM_TLS_CERT": str(certs["server.crt"]),
               "PDS_DICOM_TLS_KEY": str(certs["server.key"]), "PDS_DICOM_TLS_CA": str(certs["ca.crt"])}

    def tls_echo(*client: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["echoscu", "-aet", SENDER, "-aec", AET, *client, "+cf", str(certs["ca.crt"]),
                               "127.0.0.1", str(tls_port)], env=dcmtk_env(), capture_output=True, text=True,
                              timeout=30)

    with gateway(process_env, tmp_path, **tls_env) as gw:
        assert tls_echo("+tls", str(certs["client.key"]), str(certs["client.crt"])).returncode == 0
        assert tls_echo("+tla").returncode != 0  # no client certificate: refused
        DicomNode.objects.filter(ae_title=SENDER).update(tls_required=True)
        plain = echo(gw.port)
        assert plain.returncode != 0 and "Association Rejected" in plain.stdout + plain.stderr
        assert tls_echo("+tls", str(certs["client.key"]), str(certs["client.crt"])).returncode == 0
    refused = AuditEntry.objects.filter(action="security", channel="gateway")
    assert [e.details["reason"] for e in refused] == [f"{SENDER} must use TLS"]


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _open_fds(pids: list[int]) -> int:
    return sum(len(os.listdir(f"/proc/{p}/fd")) for p in pids)


def test_many_associations_leave_no_descriptors_behind(live_demo, process_env, tmp_path):
    """Each association's DUL waits on a wake-up pipe: it must be closed with the association."""
    with gateway(process_env, tmp_path) as gw:
        workers = _children(gw.proc.pid)
        assert len(workers) == 2
        for _ in range(3):  # warm up: database connections, imports
            assert echo(gw.port).returncode == 0
        before = _open_fds(workers)
        for _ in range(40):
            assert echo(gw.port).returncode == 0
        wait_until(lambda: _open_fds(workers) <= before + 4, timeout=10)
        assert _open_fds(workers) <= before + 4


def _spooled_files(pids: list[int]) -> list[str]:
    """The workers' open unnamed files of images being received ('<root>/.incoming/#inode (deleted)')."""
    found = []
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if "/.incoming/" in target:
                found.append(target)
    return found


def _store_pdus(ds, context_id: int) -> list[bytes]:
    """The P-DATA-TF PDUs of a C-STORE request for ``ds`` (explicit VR little endian), as any sender encodes them."""
    from io import BytesIO

    from pynetdicom.dimse_messages import C_STORE_RQ
    from pynetdicom.dimse_primitives import C_STORE
    from pynetdicom.dsutils import encode
    from pynetdicom.pdu import P_DATA_TF

    rq = C_STORE()
    rq.MessageID = 1
    rq.AffectedSOPClassUID = ds.SOPClassUID
    rq.AffectedSOPInstanceUID = ds.SOPInstanceUID
    rq.Priority = 2
    rq.DataSet = BytesIO(encode(ds, False, True))
    msg = C_STORE_RQ()
    msg.primitive_to_message(rq)
    pdus = []
    for primitive in msg.encode_msg(context_id, 16384):
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        pdus.append(pdu.encode())
    return pdus


def test_an_image_cut_short_or_a_malformed_pdu_leaves_nothing(live_demo, process_env, tmp_path):
    """The gateway writes an image to an unnamed file while it arrives: an abort mid-image or a malformed PDU
    must leave neither a file nor an open descriptor, and the gateway goes on. pynetdicom is the sender here
    because dcmtk cannot be stopped mid-image on purpose."""
    from pynetdicom import AE

    _, files = write_study(tmp_path / "study", [SeriesSpec(1, 2)], rows=256, cols=256)  # 128 KiB: 9 PDUs
    ds = dcmread(files[0])
    with gateway(process_env, tmp_path) as gw:
        workers = _children(gw.proc.pid)
        client = AE(ae_title=SENDER)
        client.add_requested_context(ds.SOPClassUID, "1.2.840.10008.1.2.1")

        assoc = client.associate("127.0.0.1", gw.port, ae_title=AET)
        assert assoc.is_established
        pdus = _store_pdus(ds, assoc.accepted_contexts[0].context_id)
        assert len(pdus) > 3
        for pdu in pdus[:-2]:  # the command and most of the data set, not the end
            assoc.dul.socket.socket.sendall(pdu)
        wait_until(lambda: len(_spooled_files(workers)) == 1, timeout=10, message="the image is being spooled")
        assoc.abort()
        wait_until(lambda: not _spooled_files(workers), timeout=10, message="the unnamed file closed")

        assoc = client.associate("127.0.0.1", gw.port, ae_title=AET)
        assert assoc.is_established
        pdus = _store_pdus(ds, assoc.accepted_contexts[0].context_id)
        for pdu in pdus[:2]:
            assoc.dul.socket.socket.sendall(pdu)
        item_runs_past_the_pdu = b"\x04\x00" + struct.pack(">I", 10) + struct.pack(">I", 5000) + b"\x01\x00abcd"
        assoc.dul.socket.socket.sendall(item_runs_past_the_pdu)
        wait_until(lambda: assoc.is_aborted, timeout=10, message="the gateway aborts the association")
        wait_until(lambda: not _spooled_files(workers), timeout=10, message="the unnamed file closed")

        run = storescu(gw.port, files)  # and the gateway goes on
        assert run.succeeded() == {f.name for f in files}, run.output[-3000:]
    assert Instance.objects.count() == 2
    assert len(dcm_files(gw.root)) == 2 and not list((gw.root / ".incoming").iterdir())


def test_the_processes_receiving_images_yield_the_cpu_to_routing(live_demo, process_env, tmp_path):
    """PDS_DICOM_NICE: on a busy night the images wait, not the routing decisions; the parent (its reconciler
    completes studies and hands them to routing) keeps its priority."""
    def nice(pid: int) -> int:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])

    with gateway(process_env, tmp_path, PDS_DICOM_NICE="7") as gw:
        workers = _children(gw.proc.pid)
        assert echo(gw.port).returncode == 0
        parent = nice(gw.proc.pid)
        # Each child lowers its priority once it has started; the parent's socket may answer before all did.
        wait_until(lambda: workers and [nice(p) for p in workers] == [min(19, parent + 7)] * len(workers),
                   timeout=30, message=f"the receiving processes at nice {min(19, parent + 7)}")
