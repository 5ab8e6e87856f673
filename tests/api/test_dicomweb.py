"""Issue 19, point 1: DICOMweb (QIDO-RS, WADO-RS) under /dicomweb/, exercised over HTTP by a client nobody here
wrote (dicomweb-client), with an API key; the case-visibility rule and the audit trail as for the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import requests
from django.utils import timezone
from pydicom.uid import generate_uid

from apps.audit.models import AuditEntry
from apps.studies.models import Instance, Series, Study
from tests.factories.dicom import make_instance

dicomweb_client = pytest.importorskip("dicomweb_client")


def _store(root: Path, site: Any, *, patient: str = "DUPONT^JEAN", series: int = 2, slices: int = 3) -> Study:
    study_uid = generate_uid()
    study = Study.objects.create(study_uid=study_uid, site=site, modality="CT", status="complete",
                                 patient_name=patient, patient_id="PAT-1", accession_number="ACC-9",
                                 study_datetime=timezone.now(), num_series=series, num_instances=series * slices)
    for s in range(1, series + 1):
        row = Series.objects.create(study=study, series_uid=generate_uid(), number=s, modality="CT",
                                    description=f"Axial {s}", num_instances=slices)
        for n in range(1, slices + 1):
            ds = make_instance(study_uid=study_uid, series_uid=row.series_uid, number=n, series_number=s,
                               rows=8, cols=6, patient_name=patient, seed=s)
            rel = f"{study_uid}/{row.series_uid}/{n}.dcm"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(root / rel, enforce_file_format=True)
            Instance.objects.create(series=row, study=study, sop_instance_uid=ds.SOPInstanceUID,
                                    sop_class_uid=ds.SOPClassUID, transfer_syntax_uid=ds.file_meta.TransferSyntaxUID,
                                    instance_number=n, path=rel, size=(root / rel).stat().st_size,
                                    sha256="0" * 64, received_at=timezone.now())
    return study


@pytest.fixture
def dicomweb(live_demo: Any, live_server: Any, settings: Any, tmp_path: Path) -> Any:
    from apps.api.services import api_key_create

    settings.PDS_DICOM_STORAGE_ROOT = tmp_path
    ours = _store(tmp_path, live_demo.establishments["vierzon"])
    theirs = _store(tmp_path, live_demo.establishments["blois"], patient="AUTRE^PATIENT")
    _, raw = api_key_create(name="pacs", establishment_id=live_demo.establishments["vierzon"].pk, scope="read")
    client = dicomweb_client.DICOMwebClient(f"{live_server.url}/dicomweb", headers={"Authorization": f"Bearer {raw}"})
    return client, ours, theirs, raw, live_server.url


def test_qido_searches_only_what_the_caller_may_see(dicomweb: Any) -> None:
    client, ours, theirs, _, _ = dicomweb
    found = client.search_for_studies()
    assert [s["0020000D"]["Value"][0] for s in found] == [ours.study_uid]
    study = pydicom.Dataset.from_json(found[0])
    assert study.PatientName == "DUPONT^JEAN" and study.AccessionNumber == "ACC-9"
    assert study.NumberOfStudyRelatedInstances == 6
    assert client.search_for_studies(search_filters={"PatientName": "DUP*"})[0]["0020000D"]["Value"] == [ours.study_uid]
    assert client.search_for_studies(search_filters={"PatientName": "AUTRE*"}) == []
    assert client.search_for_studies(search_filters={"AccessionNumber": "nope"}) == []
    series = client.search_for_series(ours.study_uid)
    assert [s["00200011"]["Value"][0] for s in series] == [1, 2]
    instances = client.search_for_instances(ours.study_uid, series[0]["0020000E"]["Value"][0])
    assert len(instances) == 3
    assert len(client.search_for_studies(limit=1, offset=0)) == 1
    with pytest.raises(requests.HTTPError) as refused:
        client.search_for_series(theirs.study_uid)
    assert refused.value.response.status_code == 404


def test_wado_retrieves_the_stored_instances_metadata_frames_and_rendered(dicomweb: Any, settings: Any) -> None:
    client, ours, _, _, _ = dicomweb
    before = AuditEntry.objects.filter(object_type="studies.study", action="read").count()
    datasets = client.retrieve_study(ours.study_uid)
    assert sorted(ds.SOPInstanceUID for ds in datasets) == sorted(
        Instance.objects.filter(study=ours).values_list("sop_instance_uid", flat=True))
    stored = {i.sop_instance_uid: i for i in Instance.objects.filter(study=ours)}
    for ds in datasets:
        original = pydicom.dcmread(Path(settings.PDS_DICOM_STORAGE_ROOT) / stored[ds.SOPInstanceUID].path)
        assert np.array_equal(ds.pixel_array, original.pixel_array)
    first = Instance.objects.filter(study=ours).select_related("series").order_by("pk").first()
    meta = client.retrieve_instance_metadata(ours.study_uid, first.series.series_uid, first.sop_instance_uid)
    assert meta["00280010"]["Value"] == [8] and meta["00280011"]["Value"] == [6]
    assert "BulkDataURI" in meta["7FE00010"]
    assert len(client.retrieve_study_metadata(ours.study_uid)) == 6
    frames = client.retrieve_instance_frames(ours.study_uid, first.series.series_uid, first.sop_instance_uid,
                                             frame_numbers=[1])
    original = pydicom.dcmread(Path(settings.PDS_DICOM_STORAGE_ROOT) / first.path)
    assert frames[0] == original.pixel_array.astype("<u2").tobytes()
    png = client.retrieve_instance_rendered(ours.study_uid, first.series.series_uid, first.sop_instance_uid,
                                            media_types=("image/png",))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # One audit entry for the study opened, not one per call.
    assert AuditEntry.objects.filter(object_type="studies.study", action="read").count() == before + 1


def test_bad_requests_are_answered_precisely(dicomweb: Any) -> None:
    _, ours, theirs, raw, base = dicomweb
    auth = {"Authorization": f"Bearer {raw}"}
    unknown = requests.get(f"{base}/dicomweb/studies", params={"NoSuchKey": "x"}, headers=auth, timeout=10)
    assert unknown.status_code == 400 and "NoSuchKey" in unknown.json()["detail"]
    bad_date = requests.get(f"{base}/dicomweb/studies", params={"StudyDate": "2026-13-01"}, headers=auth, timeout=10)
    assert bad_date.status_code == 400
    assert requests.get(f"{base}/dicomweb/studies/{theirs.study_uid}", headers=auth, timeout=10).status_code == 404
    assert requests.get(f"{base}/dicomweb/studies/not-a-uid", headers=auth, timeout=10).status_code == 404
    assert requests.get(f"{base}/dicomweb/studies", timeout=10).status_code in (401, 403)  # no key, no session
    jpeg = requests.get(f"{base}/dicomweb/studies/{ours.study_uid}", timeout=10, headers={
        **auth, "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'})
    assert jpeg.status_code == 406
