"""Issue 19, point 1: STOW-RS (POST /dicomweb/studies), exercised over HTTP by dicomweb-client with an API key,
through the C-STORE gateway's own ingest service (same checks, durability, dedupe)."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests
from pydicom.uid import MRImageStorage, generate_uid

from apps.audit.models import AuditEntry
from apps.studies.models import Instance, Study
from dicom_gateway.storage import file_sha256, part10_header, sha256_of
from tests.factories.dicom import make_instance

dicomweb_client = pytest.importorskip("dicomweb_client")


@pytest.fixture
def stow(live_demo: Any, live_server: Any, settings: Any, tmp_path: Path) -> Any:
    from apps.api.services import api_key_create

    settings.PDS_DICOM_STORAGE_ROOT = tmp_path
    keys = {}
    for name, site, scope in (("vierzon-rw", "vierzon", "read_write"), ("vierzon-ro", "vierzon", "read"),
                              ("blois-rw", "blois", "read_write")):
        _, keys[name] = api_key_create(name=name, establishment_id=live_demo.establishments[site].pk, scope=scope)

    def client(name: str) -> Any:
        return dicomweb_client.DICOMwebClient(f"{live_server.url}/dicomweb",
                                              headers={"Authorization": f"Bearer {keys[name]}"})
    return client, keys, live_server.url, live_demo, tmp_path


def series(study_uid: str, n: int = 3, **kw: Any) -> list[pydicom.Dataset]:
    series_uid = generate_uid()
    return [make_instance(study_uid=study_uid, series_uid=series_uid, number=i, rows=8, cols=8, **kw)
            for i in range(1, n + 1)]


def post(url: str, key: str, datasets: list[pydicom.Dataset], path: str = "/dicomweb/studies") -> requests.Response:
    mark = "stow-test-boundary"
    body = b""
    for ds in datasets:
        buf = BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        body += f"--{mark}\r\nContent-Type: application/dicom\r\n\r\n".encode() + buf.getvalue() + b"\r\n"
    body += f"--{mark}--\r\n".encode()
    return requests.post(url + path, data=body, timeout=60, headers={
        "Authorization": f"Bearer {key}", "Accept": "application/dicom+json",
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={mark}'})


def test_a_site_stores_a_series_durably_once_through_the_gateway_ingest(stow: Any) -> None:
    client, _, _, demo, root = stow
    study_uid = generate_uid()
    sent = series(study_uid)
    result = client("vierzon-rw").store_instances(sent)
    refs = result.ReferencedSOPSequence
    assert sorted(r.ReferencedSOPInstanceUID for r in refs) == sorted(ds.SOPInstanceUID for ds in sent)
    assert "FailedSOPSequence" not in result and result.RetrieveURL.endswith(f"/studies/{study_uid}")
    study = Study.objects.get(study_uid=study_uid)
    assert study.site_id == demo.establishments["vierzon"].pk and study.num_instances == 3
    for ds in sent:
        row = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
        assert file_sha256(root / row.path) == row.sha256
        # Stored as the C-STORE gateway writes it (its own file meta): a resend by DICOM is the same file.
        with open(root / row.path, "rb") as fh:
            stored = fh.read()
        header = part10_header(sop_class_uid=ds.SOPClassUID, sop_instance_uid=ds.SOPInstanceUID,
                               transfer_syntax_uid=ds.file_meta.TransferSyntaxUID)
        assert stored.startswith(header) and sha256_of(stored) == row.sha256
        assert pydicom.dcmread(root / row.path).pixel_array.shape == (8, 8)
    assert AuditEntry.objects.filter(action="receive", object_id=str(study.pk)).count() == 1
    # An identical resend is acknowledged and ignored.
    again = client("vierzon-rw").store_instances(sent)
    assert len(again.ReferencedSOPSequence) == 3 and Instance.objects.count() == 3
    # Into the study's own URL, and read back through WADO-RS by the site.
    more = series(study_uid, n=1)
    client("vierzon-rw").store_instances(more, study_instance_uid=study_uid)
    assert Study.objects.get(study_uid=study_uid).num_instances == 4


def test_what_the_gateway_refuses_stow_refuses_with_the_same_reason_and_keeps_nothing(stow: Any) -> None:
    _, keys, url, _, root = stow
    study_uid = generate_uid()
    good = series(study_uid, n=1)
    ct_as_mr = make_instance(study_uid=study_uid, series_uid=generate_uid(), sop_class=MRImageStorage,
                             modality="CT")
    r = post(url, keys["vierzon-rw"], good + [ct_as_mr])
    assert r.status_code == 202 and r.headers["Content-Type"].startswith("application/dicom+json")
    response = pydicom.Dataset.from_json(r.json())
    (failed,) = response.FailedSOPSequence
    assert failed.ReferencedSOPInstanceUID == ct_as_mr.SOPInstanceUID and failed.FailureReason == 0xA900
    assert [x.ReferencedSOPInstanceUID for x in response.ReferencedSOPSequence] == [good[0].SOPInstanceUID]
    assert "Modality CT is not allowed" in r.headers["Warning"]
    assert not Instance.objects.filter(sop_instance_uid=ct_as_mr.SOPInstanceUID).exists()
    assert len([p for p in root.rglob("*.dcm")]) == 1
    # All refused: 409, and no study row at all.
    lone = make_instance(study_uid=generate_uid(), series_uid=generate_uid(), sop_class=MRImageStorage,
                         modality="CT")
    r = post(url, keys["vierzon-rw"], [lone])
    assert r.status_code == 409 and not Study.objects.filter(study_uid=lone.StudyInstanceUID).exists()
    # Not the study of the URL.
    other = series(generate_uid(), n=1)
    r = post(url, keys["vierzon-rw"], other, path=f"/dicomweb/studies/{study_uid}")
    assert r.status_code == 409
    assert pydicom.Dataset.from_json(r.json()).FailedSOPSequence[0].FailureReason == 0xA900


def test_only_a_sites_own_read_write_key_stores_for_it(stow: Any) -> None:
    client, keys, url, _, _ = stow
    study_uid = generate_uid()
    client("vierzon-rw").store_instances(series(study_uid, n=1))
    # Another establishment cannot add images to this site's study.
    r = post(url, keys["blois-rw"], series(study_uid, n=1))
    assert r.status_code == 409
    assert pydicom.Dataset.from_json(r.json()).FailedSOPSequence[0].FailureReason == 0x0124
    assert Study.objects.get(study_uid=study_uid).num_instances == 1
    # A read-only key cannot store at all; nor can anyone without a key.
    assert post(url, keys["vierzon-ro"], series(generate_uid(), n=1)).status_code == 403
    assert post(url, "nope", series(generate_uid(), n=1)).status_code == 401
    # Not multipart/related application/dicom: 415.
    r = requests.post(f"{url}/dicomweb/studies", data=b"x", timeout=30, headers={
        "Authorization": f"Bearer {keys['vierzon-rw']}", "Content-Type": "application/octet-stream"})
    assert r.status_code == 415
    empty = requests.post(f"{url}/dicomweb/studies", data=b"--b--\r\n", timeout=30, headers={
        "Authorization": f"Bearer {keys['vierzon-rw']}",
        "Content-Type": 'multipart/related; type="application/dicom"; boundary=b'})
    assert empty.status_code == 400
    assert Study.objects.count() == 1


def test_a_body_over_pds_stow_max_bytes_is_refused_413_and_nothing_is_stored(stow: Any, settings: Any) -> None:
    _, keys, url, _, root = stow
    settings.PDS_STOW_MAX_BYTES = 4000
    sent = series(generate_uid(), n=3)  # about 1,900 bytes each
    r = post(url, keys["vierzon-rw"], sent)
    assert r.status_code == 413
    assert "4000 bytes, PDS_STOW_MAX_BYTES" in r.json()["detail"] and "several requests" in r.json()["detail"]
    assert not Study.objects.exists() and not list(root.rglob("*.dcm"))
    assert post(url, keys["vierzon-rw"], sent[:1]).status_code == 200  # under the limit


def test_the_body_is_copied_to_disk_in_chunks_and_cut_at_the_limit_without_a_content_length(
        stow: Any, settings: Any) -> None:
    """A chunked request has no Content-Length: the copy itself stops at the limit; the parts are read from
    the file's memory map, one at a time."""
    from apps.api import stow as st
    from apps.core.errors import ApplicationError

    class Stream(BytesIO):  # a request stream: read(n) only, no length known beforehand
        reads = 0

        def read(self, n: int | None = -1) -> bytes:
            Stream.reads += 1
            return super().read(n)

    body = b"--m\r\nContent-Type: application/dicom\r\n\r\n" + b"x" * (3 * st.COPY_CHUNK) + b"\r\n--m--\r\n"
    with st.body_on_disk(Stream(body), limit=len(body)) as mapped:
        assert not isinstance(mapped, bytes) and len(mapped) == len(body)
        ((ctype, start, end),) = st.part_spans(b"m", mapped)
        assert ctype == "application/dicom" and mapped[start:end] == b"x" * (3 * st.COPY_CHUNK)
    assert Stream.reads >= 4  # chunks, not one read of the whole
    with pytest.raises(ApplicationError) as refused, st.body_on_disk(Stream(body), limit=len(body) - 1):
        pass
    assert refused.value.status_code == 413
    assert not list((root_incoming := st.ingest().root / ".incoming").glob("stow-*")), root_incoming
