"""Issue 19: "memory stays flat when retrieving a 1,000-image study". A WADO-RS study retrieve is streamed file by
file: the Python memory held while the whole body is read does not grow with the study (50, then 1,000 instances
of 512 KB: 25 MB then 500 MB of body)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from pydicom.uid import generate_uid

from apps.studies.models import Instance, Series, Study
from tests.api.conftest import pacs_client
from tests.factories.dicom import make_instance

ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def _study(root: Path, site: Any, count: int) -> tuple[Study, int]:
    """A study of ``count`` rows, all pointing to one 512x512 file (the retrieve reads each row's file anew)."""
    study_uid, series_uid = generate_uid(), generate_uid()
    ds = make_instance(study_uid=study_uid, series_uid=series_uid, rows=512, cols=512)
    rel = f"{study_uid}/slice.dcm"
    (root / rel).parent.mkdir(parents=True)
    ds.save_as(root / rel, enforce_file_format=True)
    size = (root / rel).stat().st_size
    study = Study.objects.create(study_uid=study_uid, site=site, modality="CT", status="complete",
                                 patient_name="DUPONT^JEAN", patient_id="PAT-1", study_datetime=timezone.now(),
                                 num_series=1, num_instances=count)
    series = Series.objects.create(study=study, series_uid=series_uid, number=1, modality="CT",
                                   num_instances=count)
    Instance.objects.bulk_create(
        Instance(series=series, study=study, sop_instance_uid=generate_uid(), sop_class_uid=ds.SOPClassUID,
                 transfer_syntax_uid=ds.file_meta.TransferSyntaxUID, instance_number=n, path=rel, size=size,
                 sha256="0" * 64, received_at=timezone.now()) for n in range(1, count + 1))
    return study, size


def _retrieve_peak(client: Client, study: Study) -> tuple[int, int]:
    """(bytes of body, peak of Python allocations while the request runs and its body is read)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        response = client.get(f"/dicomweb/studies/{study.study_uid}", HTTP_ACCEPT=ACCEPT)
        assert response.status_code == 200 and response.streaming
        total = sum(len(chunk) for chunk in response.streaming_content)
        return total, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.django_db
def test_study_retrieve_memory_does_not_grow_with_the_study(demo: Any, settings: Any, tmp_path: Path) -> None:
    settings.PDS_DICOM_STORAGE_ROOT = tmp_path
    site = demo.establishments["vierzon"]
    client = pacs_client(site)
    small, size = _study(tmp_path, site, 50)
    large, _ = _study(tmp_path, site, 1000)
    _retrieve_peak(client, small)  # warm: imports, URL resolver, caches
    small_body, small_peak = _retrieve_peak(client, small)
    large_body, large_peak = _retrieve_peak(client, large)
    assert small_body > 50 * size and large_body > 1000 * size  # every file sent
    # 475 MB more body for at most 2 MB more memory (the rows' paths, a few hundred bytes each), and never more
    # than a few chunks of 256 KB in all.
    assert large_peak - small_peak < 2 * 1024 * 1024, (small_peak, large_peak)
    assert large_peak < 8 * 1024 * 1024, large_peak
