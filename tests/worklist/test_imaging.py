from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.utils import timezone
from PIL import Image
from pydicom.uid import generate_uid

from apps.worklist import services
from apps.worklist.imaging import CT_PRESETS, Window, apply_window
from tests.factories.dicom import make_instance
from tests.factories.worklist import make_case

# Three columns of known Hounsfield units: air, brain, bone.
HU = np.array([[-1000, 40, 1000]] * 4, dtype=np.int16)


def test_window_is_linear_and_clipped() -> None:
    out = apply_window(np.array([-1000.0, 0.0, 40.0, 80.0, 1000.0]), Window(40, 80))
    assert list(out) == [0, 0, 127, 255, 255]


def _store_ct(root: Path, case: Any) -> list[int]:
    from apps.studies.models import Instance, Series, Study

    study_uid, series_uid = generate_uid(), generate_uid()
    study = Study.objects.create(study_uid=study_uid, site=case.site, case=case, modality="CT", num_series=1,
                                 num_instances=2, status="complete")
    series = Series.objects.create(study=study, series_uid=series_uid, number=1, modality="CT",
                                   description="Axial", num_instances=2)
    ids = []
    for n in (1, 2):
        ds = make_instance(study_uid=study_uid, series_uid=series_uid, number=n, rows=4, cols=3)
        ds.PixelRepresentation, ds.BitsStored, ds.HighBit = 1, 16, 15
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = (HU + 1024).astype(np.int16).tobytes()  # stored = HU - intercept
        rel = f"{study_uid}/{n}.dcm"
        (root / study_uid).mkdir(parents=True, exist_ok=True)
        ds.save_as(root / rel, enforce_file_format=True)
        ids.append(Instance.objects.create(series=series, study=study, sop_instance_uid=ds.SOPInstanceUID,
                                           sop_class_uid=ds.SOPClassUID, instance_number=n, path=rel, size=1,
                                           sha256="0" * 64, received_at=timezone.now()).pk)
    return ids


@pytest.mark.django_db
def test_slices_render_with_ct_presets_through_the_viewer(demo: Any, login: Any, tmp_path: Path,
                                                          settings: Any) -> None:
    settings.PDS_DICOM_STORAGE_ROOT = tmp_path
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    services.case_claim(case_id=case.pk, user=demo.users["radiologue"])
    ids = _store_ct(tmp_path, case)
    client = login("radiologue")
    page = client.get(f"/worklist/c/{case.public_id}/viewer/")
    assert page.status_code == 200 and page.context["series"][0]["instances"] == ids
    case.refresh_from_db()
    assert case.opened_at is not None

    def pixels(preset: str) -> list[int]:
        resp = client.get(f"/worklist/c/{case.public_id}/instances/{ids[0]}.png", {"preset": preset})
        assert resp.status_code == 200 and resp["Content-Type"] == "image/png"
        img = Image.open(io.BytesIO(resp.content))
        assert img.mode == "L" and img.size == (3, 4)
        return list(np.asarray(img)[0])

    assert pixels("brain") == [0, 127, 255]
    assert pixels("lung") == list(apply_window(HU[0].astype(float), CT_PRESETS["lung"]))
    assert pixels("bone")[0] == 0 and pixels("bone")[2] == 212
    soft = pixels("soft_tissue")
    assert soft[0] == 0 and 0 < soft[1] < 255 and soft[2] == 255
    # Another site's user cannot fetch the pixels.
    assert login("urgentiste.blois").get(f"/worklist/c/{case.public_id}/instances/{ids[0]}.png").status_code == 404
