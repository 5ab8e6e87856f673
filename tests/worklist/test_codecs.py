"""Issue 19, point 3: every common transfer syntax decodes server-side. The compressed files are made by tools
nobody here wrote (dcmtk's dcmcjpeg, dcmcjpls, dcmcrle, dcmconv) or pydicom's own encoders (JPEG 2000, RLE
multi-frame); each is rendered by the viewer's code and compared with the original pixels."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from django.utils import timezone
from PIL import Image
from pydicom.uid import JPEG2000Lossless, RLELossless, generate_uid

from apps.worklist import services
from apps.worklist.imaging import frame_pixels, modality_values, render_png
from tests.factories.dicom import make_instance
from tests.factories.worklist import make_case

needs_dcmtk = pytest.mark.skipif(shutil.which("dcmcjpeg") is None, reason="dcmtk is installed by make test")

# (tool and options, transfer syntax it writes, largest difference allowed from the original stored values)
DCMTK: dict[str, tuple[list[str], str, int]] = {
    "jpeg-lossless-sv1": (["dcmcjpeg"], "1.2.840.10008.1.2.4.70", 0),
    "jpeg-lossless-process14": (["dcmcjpeg", "+el"], "1.2.840.10008.1.2.4.57", 0),
    "jpeg-extended": (["dcmcjpeg", "+ee"], "1.2.840.10008.1.2.4.51", 64),
    "jpeg-ls-lossless": (["dcmcjpls", "+el"], "1.2.840.10008.1.2.4.80", 0),
    "jpeg-ls-near-lossless": (["dcmcjpls", "+en"], "1.2.840.10008.1.2.4.81", 2),
    "rle": (["dcmcrle"], "1.2.840.10008.1.2.5", 0),
    "deflate": (["dcmconv", "+td"], "1.2.840.10008.1.2.1.99", 0),
    "big-endian": (["dcmconv", "+tb"], "1.2.840.10008.1.2.2", 0),
}


def _original(directory: Path, *, bits: int = 12, rows: int = 32, cols: int = 24) -> tuple[Path, np.ndarray]:
    ds = make_instance(study_uid=generate_uid(), series_uid=generate_uid(), rows=rows, cols=cols)
    if bits == 8:  # JPEG baseline is 8 bits per sample
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.RescaleIntercept = 0
        ds.PixelData = np.random.default_rng(8).integers(0, 256, size=(32, 24), dtype=np.uint8).tobytes()
    path = directory / f"original-{bits}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, pydicom.dcmread(path).pixel_array


def _dcmtk(tool: list[str], source: Path, target: Path) -> Path:
    done = subprocess.run([*tool, str(source), str(target)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return target


def _png(path: Path, **kw: Any) -> np.ndarray:
    img = Image.open(io.BytesIO(render_png(path, **kw)))
    return np.asarray(img)


@needs_dcmtk
@pytest.mark.parametrize("name", sorted(DCMTK))
def test_each_transfer_syntax_made_by_dcmtk_renders_as_the_original(name: str, tmp_path: Path) -> None:
    tool, syntax, tolerance = DCMTK[name]
    source, original = _original(tmp_path)
    target = _dcmtk(tool, source, tmp_path / f"{name}.dcm")
    ds = pydicom.dcmread(target)
    assert ds.file_meta.TransferSyntaxUID == syntax
    decoded = frame_pixels(ds)
    assert decoded.shape == original.shape
    assert int(np.abs(decoded.astype(np.int32) - original.astype(np.int32)).max()) <= tolerance
    rendered, reference = _png(target), _png(source)
    assert rendered.shape == (32, 24)
    if tolerance == 0:
        assert np.array_equal(rendered, reference)


@needs_dcmtk
def test_jpeg_baseline_renders(tmp_path: Path) -> None:
    source, original = _original(tmp_path, bits=8)
    target = _dcmtk(["dcmcjpeg", "+eb"], source, tmp_path / "baseline.dcm")
    assert pydicom.dcmread(target).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    decoded = frame_pixels(pydicom.dcmread(target))
    assert decoded.shape == original.shape
    assert float(np.abs(decoded.astype(np.int32) - original.astype(np.int32)).mean()) < 20  # lossy
    assert _png(target).shape == (32, 24)


def test_jpeg_2000_renders_as_the_original(tmp_path: Path) -> None:
    source, original = _original(tmp_path, rows=64, cols=64)  # openjpeg's default 6 resolution levels want 64
    ds = pydicom.dcmread(source)
    ds.compress(JPEG2000Lossless)
    target = tmp_path / "j2k.dcm"
    ds.save_as(target, enforce_file_format=True)
    assert np.array_equal(frame_pixels(pydicom.dcmread(target)), original)
    assert np.array_equal(_png(target), _png(source))


def test_every_frame_of_a_multi_frame_instance_renders(tmp_path: Path) -> None:
    ds = make_instance(study_uid=generate_uid(), series_uid=generate_uid(), rows=8, cols=8)
    frames = np.stack([np.full((8, 8), 1024 + 100 * i, dtype=np.uint16) for i in range(3)])
    frames[:, 0, 0] = 0  # a dark corner: each frame has its own window
    ds.NumberOfFrames = 3
    ds.PixelData = frames.tobytes()
    ds.compress(RLELossless)
    path = tmp_path / "multi.dcm"
    ds.save_as(path, enforce_file_format=True)
    read = pydicom.dcmread(path)
    for i in range(3):
        assert np.array_equal(frame_pixels(read, i), frames[i])
        assert modality_values(read, i)[1, 1] == 100 * i  # rescale intercept -1024
    with pytest.raises(IndexError):
        frame_pixels(read, 3)


@needs_dcmtk
@pytest.mark.django_db
def test_a_jpeg_lossless_slice_and_its_frames_through_the_viewer(demo: Any, login: Any, tmp_path: Path,
                                                                 settings: Any) -> None:
    """Before: 400 "This image cannot be rendered" for JPEG lossless (no decoder installed)."""
    from apps.studies.models import Instance, Series, Study

    settings.PDS_DICOM_STORAGE_ROOT = tmp_path
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    services.case_claim(case_id=case.pk, user=demo.users["radiologue"])
    source, _ = _original(tmp_path)
    rel = "jpeg/lossless.dcm"
    (tmp_path / "jpeg").mkdir()
    ds = pydicom.dcmread(_dcmtk(["dcmcjpeg"], source, tmp_path / rel))
    study = Study.objects.create(study_uid=ds.StudyInstanceUID, site=case.site, case=case, modality="CT",
                                 num_series=1, num_instances=1, status="complete")
    series = Series.objects.create(study=study, series_uid=ds.SeriesInstanceUID, number=1, modality="CT",
                                   num_instances=1)
    inst = Instance.objects.create(series=series, study=study, sop_instance_uid=ds.SOPInstanceUID,
                                   sop_class_uid=ds.SOPClassUID, transfer_syntax_uid=ds.file_meta.TransferSyntaxUID,
                                   instance_number=1, path=rel, size=1, sha256="0" * 64, received_at=timezone.now())
    client = login("radiologue")
    url = f"/worklist/c/{case.public_id}/instances/{inst.pk}.png"
    resp = client.get(url, {"preset": "brain"})
    assert resp.status_code == 200 and resp["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(resp.content)).size == (24, 32)
    assert client.get(url, {"frame": "1"}).status_code == 200
    assert client.get(url, {"frame": "2"}).status_code == 404  # one frame only
    assert client.get(url, {"frame": "x"}).status_code == 400
