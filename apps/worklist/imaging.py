"""Server-side rendering of DICOM slices to PNG for the browser viewer.

Pure functions over pixel arrays (window/level) plus one loader; the files are
read from settings.PDS_DICOM_STORAGE_ROOT, never from a path the user chose.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from django.conf import settings
from PIL import Image


@dataclass(frozen=True)
class Window:
    center: float
    width: float


# CT presets in Hounsfield units (centre, width).
CT_PRESETS: dict[str, Window] = {
    "brain": Window(40, 80),
    "soft_tissue": Window(50, 400),
    "lung": Window(-600, 1500),
    "bone": Window(400, 1800),
}


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """Linear window/level to 0..255 (DICOM PS3.3 C.11.2.1.2, simplified to the linear function)."""
    low = window.center - window.width / 2.0
    scaled = (values.astype(np.float64) - low) / max(window.width, 1.0) * 255.0
    return np.clip(scaled, 0, 255).astype(np.uint8)


def frame_count(ds: pydicom.Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def frame_pixels(ds: pydicom.Dataset, frame: int = 0) -> np.ndarray:
    """The stored values of one frame (0-based), whatever the transfer syntax: pydicom decodes compressed pixel
    data with the pylibjpeg plugins (JPEG baseline, extended, lossless, JPEG-LS, JPEG 2000, RLE)."""
    if not 0 <= frame < frame_count(ds):
        raise IndexError(f"frame {frame + 1} of {frame_count(ds)}")
    pixels = ds.pixel_array
    if frame_count(ds) > 1:
        pixels = pixels[frame]
    return pixels


def modality_values(ds: pydicom.Dataset, frame: int = 0) -> np.ndarray:
    """Stored pixel values -> modality values (Hounsfield units for CT) with rescale slope/intercept."""
    pixels = frame_pixels(ds, frame)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return pixels.astype(np.float64) * slope + intercept


def default_window(ds: pydicom.Dataset, values: np.ndarray) -> Window:
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:
        c = center[0] if isinstance(center, pydicom.multival.MultiValue) else center
        w = width[0] if isinstance(width, pydicom.multival.MultiValue) else width
        return Window(float(c), float(w))
    lo, hi = float(values.min()), float(values.max())
    return Window((lo + hi) / 2.0, max(hi - lo, 1.0))


def render_png(path: Path, *, preset: str = "", frame: int = 0) -> bytes:
    """One frame (0-based) of the instance as PNG, windowed for the eye (``preset`` for CT)."""
    ds = pydicom.dcmread(str(path))
    if ds.get("SamplesPerPixel", 1) == 3:
        img = Image.fromarray(frame_pixels(ds, frame).astype(np.uint8), mode="RGB")
    else:
        values = modality_values(ds, frame)
        window = CT_PRESETS.get(preset) if ds.get("Modality") == "CT" else None
        out = apply_window(values, window or default_window(ds, values))
        if ds.get("PhotometricInterpretation") == "MONOCHROME1":
            out = 255 - out
        img = Image.fromarray(out, mode="L")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def instance_file(relative_path: str) -> Path:
    root = Path(settings.PDS_DICOM_STORAGE_ROOT).resolve()
    full = (root / relative_path).resolve()
    if root not in full.parents:
        raise FileNotFoundError(relative_path)
    return full
