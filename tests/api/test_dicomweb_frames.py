"""Issue 19: frames of a compressed instance are sent as stored when the client accepts any transfer syntax (as
Orthanc does; OHIF decodes them in its workers), decoded when it asks for Explicit VR Little Endian; the series
metadata is read from the files once, then from the cache."""

from __future__ import annotations

import shutil
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from django.utils import timezone
from pydicom.uid import generate_uid

from apps.studies.models import Instance, Series, Study
from tests.api.conftest import pacs_client
from tests.factories.dicom import JPEG_LOSSLESS_SV1, jpeg_lossless_compress, make_instance

pytestmark = pytest.mark.skipif(shutil.which("dcmcjpeg") is None, reason="dcmtk is installed by make test")


def _jpeg_study(root: Path, site: Any, slices: int = 3) -> tuple[Study, list[Instance], list[np.ndarray]]:
    study_uid, series_uid = generate_uid(), generate_uid()
    study = Study.objects.create(study_uid=study_uid, site=site, modality="CT", status="complete",
                                 patient_name="DUPONT^JEAN", patient_id="PAT-1", study_datetime=timezone.now(),
                                 num_series=1, num_instances=slices)
    series = Series.objects.create(study=study, series_uid=series_uid, number=1, modality="CT", num_instances=slices)
    rows, pixels = [], []
    for n in range(1, slices + 1):
        ds = make_instance(study_uid=study_uid, series_uid=series_uid, number=n, rows=32, cols=32, phantom=True)
        rel = f"{study_uid}/{n}.dcm"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(root / rel, enforce_file_format=True)
        pixels.append(ds.pixel_array)
        jpeg_lossless_compress(root / rel)
        rows.append(Instance.objects.create(
            series=series, study=study, sop_instance_uid=ds.SOPInstanceUID, sop_class_uid=ds.SOPClassUID,
            transfer_syntax_uid=JPEG_LOSSLESS_SV1, instance_number=n, path=rel, size=(root / rel).stat().st_size,
            sha256="0" * 64, received_at=timezone.now()))
    return study, rows, pixels


def _parts(response: Any) -> list[tuple[str, bytes]]:
    """(media type; transfer-syntax, bytes) of each part, read by the standard library's MIME parser."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {response['Content-Type']}\r\n\r\n".encode() + response.content)
    return [(f"{part.get_content_type()}; transfer-syntax={part.get_param('transfer-syntax')}",
             part.get_payload(decode=True)) for part in message.iter_parts()]


@pytest.mark.django_db
def test_compressed_frames_as_stored_or_decoded_and_metadata_cached(demo: Any, settings: Any, tmp_path: Path) -> None:
    settings.PDS_DICOM_STORAGE_ROOT = tmp_path
    site = demo.establishments["vierzon"]
    client = pacs_client(site)
    study, rows, pixels = _jpeg_study(tmp_path, site)
    url = f"/dicomweb/studies/{study.study_uid}/series/{rows[0].series.series_uid}/instances/{rows[0].sop_instance_uid}"
    # OHIF's Accept: any syntax. The JPEG Lossless bytes as stored, typed as PS3.18 says, with their syntax.
    r = client.get(f"{url}/frames/1", HTTP_ACCEPT='multipart/related; type="application/octet-stream"; '
                                                  "transfer-syntax=*")
    assert r.status_code == 200
    assert r["Content-Type"].startswith(f'multipart/related; type="image/jpeg; transfer-syntax={JPEG_LOSSLESS_SV1}"')
    ((ctype, data),) = _parts(r)
    assert ctype == f"image/jpeg; transfer-syntax={JPEG_LOSSLESS_SV1}"
    stored = pydicom.dcmread(tmp_path / rows[0].path)
    assert data.startswith(b"\xff\xd8") and len(data) < stored.Rows * stored.Columns * 2  # compressed, a JPEG
    from pylibjpeg import decode

    assert np.array_equal(decode(data).reshape(32, 32), pixels[0])  # lossless: the original pixels
    # Asked for Explicit VR Little Endian: decoded here.
    r = client.get(f"{url}/frames/1", HTTP_ACCEPT='multipart/related; type="application/octet-stream"; '
                                                  "transfer-syntax=1.2.840.10008.1.2.1")
    ((ctype, data),) = _parts(r)
    assert ctype.startswith("application/octet-stream") and data == pixels[0].astype("<u2").tobytes()
    assert client.get(f"{url}/frames/2").status_code == 404
    # The series metadata: read from the files once; then from the cache (the files gone, still answered).
    meta_url = f"/dicomweb/studies/{study.study_uid}/series/{rows[0].series.series_uid}/metadata"
    first = client.get(meta_url)
    assert first.status_code == 200 and first["Content-Type"] == "application/dicom+json"
    for row in rows:
        (tmp_path / row.path).unlink()
    again = client.get(meta_url)
    assert again.json() == first.json() and len(again.json()) == 3
    assert again.json()[0]["7FE00010"]["BulkDataURI"].startswith("http://testserver/dicomweb/studies/")
    assert again.json()[0]["00280010"]["Value"] == [32]


@pytest.mark.django_db
def test_dicomweb_has_its_own_rate_a_series_is_not_cut_by_the_apis(demo: Any, settings: Any, tmp_path: Path) -> None:
    """Before: DICOMweb shared the API's 600/min, and a viewer loading a 300-slice series and a prior got 429s."""
    settings.PDS_DICOM_STORAGE_ROOT = tmp_path
    settings.PDS_API_THROTTLE_RATE = "3/min"
    settings.PDS_DICOMWEB_THROTTLE_RATE = "8/min"
    site = demo.establishments["vierzon"]
    client = pacs_client(site)
    study, rows, _ = _jpeg_study(tmp_path, site, slices=1)
    url = (f"/dicomweb/studies/{study.study_uid}/series/{rows[0].series.series_uid}/instances/"
           f"{rows[0].sop_instance_uid}/frames/1")
    assert [client.get(url).status_code for _ in range(8)] == [200] * 8  # past the API's 3
    assert client.get(url).status_code == 429  # DICOMweb's own limit


@pytest.mark.django_db
def test_native_frames_are_sliced_from_the_pixel_data(demo: Any, settings: Any, tmp_path: Path) -> None:
    """A multi-frame uncompressed instance: each requested frame is its own bytes of the pixel data, in order."""
    settings.PDS_DICOM_STORAGE_ROOT = tmp_path
    site = demo.establishments["vierzon"]
    client = pacs_client(site)
    study, rows, _ = _jpeg_study(tmp_path, site, slices=1)
    frames = np.stack([np.full((8, 6), 1000 + 7 * i, dtype=np.uint16) for i in range(3)])
    ds = make_instance(study_uid=study.study_uid, series_uid=rows[0].series.series_uid,
                       sop_uid=rows[0].sop_instance_uid, rows=8, cols=6)
    ds.NumberOfFrames = 3
    ds.PixelData = frames.tobytes()
    ds.save_as(tmp_path / rows[0].path, enforce_file_format=True)
    url = (f"/dicomweb/studies/{study.study_uid}/series/{rows[0].series.series_uid}/instances/"
           f"{rows[0].sop_instance_uid}/frames/3,1")
    r = client.get(url, HTTP_ACCEPT='multipart/related; type="application/octet-stream"; transfer-syntax=*')
    assert [data for _, data in _parts(r)] == [frames[2].tobytes(), frames[0].tobytes()]
    assert client.get(url.replace("3,1", "4")).status_code == 404


@pytest.mark.django_db
def test_a_complete_studys_metadata_is_prepared_before_the_viewer_asks(demo: Any, settings: Any,
                                                                      tmp_path: Path) -> None:
    """The worker's task at the study's completion (apps.worklist.dicom_json): every instance's JSON in the cache,
    so the viewer's first /metadata reads no file (the files gone here: still answered, the same document)."""
    from apps.worklist.dicom_json import study_metadata_prepare

    settings.PDS_DICOM_STORAGE_ROOT = tmp_path
    site = demo.establishments["vierzon"]
    study, rows, _ = _jpeg_study(tmp_path, site, slices=4)
    assert study_metadata_prepare(study_id=study.pk) == 4
    assert study_metadata_prepare(study_id=study.pk) == 0  # all there: nothing read again
    for row in rows:
        (tmp_path / row.path).unlink()
    meta = pacs_client(site).get(f"/dicomweb/studies/{study.study_uid}/series/{rows[0].series.series_uid}/metadata")
    assert meta.status_code == 200 and len(meta.json()) == 4
    assert [m["00200013"]["Value"] for m in meta.json()] == [[1], [2], [3], [4]]
    assert meta.json()[0]["7FE00010"]["BulkDataURI"].startswith("http://testserver/dicomweb/studies/")
