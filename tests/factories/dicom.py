"""Synthetic DICOM files for the gateway tests and the ingest benchmark (pydicom writes them, dcmtk sends them)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid

US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
PARIS = ZoneInfo("Europe/Paris")


def jpeg_lossless_compress(path: Path) -> None:
    """Compress a Part 10 file in place to JPEG Lossless SV1 with dcmtk (``dcmcjpeg``, installed by make test)."""
    import subprocess

    tmp = path.with_suffix(".jpeg.dcm")
    subprocess.run(["dcmcjpeg", str(path), str(tmp)], check=True, capture_output=True)
    tmp.replace(path)


@dataclass(frozen=True)
class SeriesSpec:
    number: int
    slices: int
    description: str = "Axial"


def make_instance(*, study_uid: str, series_uid: str, sop_uid: str | None = None, number: int = 1,
                  series_number: int = 1, rows: int = 16, cols: int = 16, modality: str = "CT",
                  sop_class: str = CTImageStorage, patient_id: str = "PAT-0001", patient_name: str = "DUPONT^JEAN",
                  accession: str = "ACC-0001", description: str = "Scanner cérébral", seed: int = 0,
                  series_description: str = "Axial", phantom: bool = False) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid or generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = modality
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.IssuerOfPatientID = "CHVIERZON"
    other = Dataset()
    other.PatientID = "1234567890123"
    other.IssuerOfPatientID = "INS-NIR"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.PatientBirthDate = "19500102"
    ds.PatientSex = "M"
    ds.AccessionNumber = accession
    acquired = dt.datetime.now(PARIS)  # the modality's clock: a request typed now matches it (within 12 h)
    ds.StudyDate, ds.StudyTime = acquired.strftime("%Y%m%d"), acquired.strftime("%H%M%S")
    ds.StudyID = "1"
    ds.StudyDescription = description
    ds.SeriesDescription = series_description
    ds.SeriesNumber = series_number
    ds.InstanceNumber = number
    ds.BodyPartExamined = "HEAD"
    ds.StationName = "VZ-CT1"
    ds.ReferringPhysicianName = "MARTIN^CLAIRE"
    # Geometry of an axial stack (1 mm cubes): what a viewer needs to rebuild a volume (MPR).
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[study_uid, "frame-of-reference"])
    ds.ImagePositionPatient = [0.0, 0.0, float(number)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [1.0, 1.0]
    ds.SliceThickness = 1.0
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    rng = np.random.default_rng(seed * 100003 + number)
    if phantom:
        ds.PixelData = phantom_slice(rows, cols, number, rng).tobytes()
    else:
        ds.PixelData = rng.integers(0, 4096, size=(rows, cols), dtype=np.uint16).tobytes()
    return ds


def phantom_slice(rows: int, cols: int, number: int, rng: np.random.Generator) -> np.ndarray:
    """A head-like slice: a skull ring (bone), brain inside, a dense spot moving with the slice, a little noise;
    compresses as a real CT does and shows structure in every plane."""
    y, x = np.ogrid[:rows, :cols]
    r = np.hypot((y - rows / 2) / (rows / 2), (x - cols / 2) / (cols / 2))
    img = np.zeros((rows, cols), dtype=np.int32)  # air: -1024 HU with the intercept
    img[r < 0.9] = 1024 + 1400  # bone
    img[r < 0.8] = 1024 + 35  # brain
    spot = np.hypot(y - rows * (0.3 + 0.004 * (number % 100)), x - cols * 0.6) < max(2, rows // 16)
    img[spot] = 1024 + 70
    img += rng.integers(-8, 9, size=(rows, cols))
    return np.clip(img, 0, 4095).astype(np.uint16)


def write_study(directory: Path, series: list[SeriesSpec], *, study_uid: str | None = None, rows: int = 16,
                cols: int = 16, modality: str = "CT", sop_class: str = CTImageStorage, accession: str = "ACC-0001",
                patient_id: str = "PAT-0001", seed: int = 0) -> tuple[str, list[Path]]:
    """Write one study (one file per slice) under ``directory``; returns (study uid, files in send order)."""
    study_uid = study_uid or generate_uid()
    directory.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for spec in series:
        series_uid = generate_uid()
        for n in range(1, spec.slices + 1):
            ds = make_instance(study_uid=study_uid, series_uid=series_uid, number=n, series_number=spec.number,
                               rows=rows, cols=cols, modality=modality, sop_class=sop_class, accession=accession,
                               patient_id=patient_id, seed=seed + spec.number, series_description=spec.description)
            path = directory / f"s{spec.number:02d}_{n:04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
    return study_uid, files


def store_study(root: Path, site: object, *, case: object = None, series: int = 1, slices: int = 3, rows: int = 8,
                cols: int = 6, patient: str = "DUPONT^JEAN", patient_id: str = "PAT-1",
                study_uid: str | None = None, phantom: bool = False, jpeg_lossless: bool = False) -> object:
    """A complete study written under the image store ``root`` and recorded (Study, Series, Instance rows), as
    the gateway leaves it; attached to ``case`` when given. ``phantom``: head-like slices instead of noise;
    ``jpeg_lossless``: compressed by dcmtk's ``dcmcjpeg`` (JPEG Lossless, first-order prediction, SV1), as a
    modality or a PACS sends them (pydicom has no encoder for it)."""
    from django.utils import timezone

    from apps.studies.models import Instance, Series, Study

    study_uid = study_uid or generate_uid()
    study = Study.objects.create(study_uid=study_uid, site=site, case=case, modality="CT", status="complete",
                                 patient_name=patient, patient_id=patient_id, accession_number="ACC-9",
                                 study_datetime=timezone.now(), num_series=series, num_instances=series * slices)
    for s in range(1, series + 1):
        row = Series.objects.create(study=study, series_uid=generate_uid(), number=s, modality="CT",
                                    description=f"Axial {s}", num_instances=slices)
        for n in range(1, slices + 1):
            ds = make_instance(study_uid=study_uid, series_uid=row.series_uid, number=n, series_number=s,
                               rows=rows, cols=cols, patient_name=patient, patient_id=patient_id, seed=s,
                               phantom=phantom)
            rel = f"{study_uid}/{row.series_uid}/{n}.dcm"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(root / rel, enforce_file_format=True)
            syntax = ds.file_meta.TransferSyntaxUID
            if jpeg_lossless:
                jpeg_lossless_compress(root / rel)
                syntax = JPEG_LOSSLESS_SV1
            Instance.objects.create(series=row, study=study, sop_instance_uid=ds.SOPInstanceUID,
                                    sop_class_uid=ds.SOPClassUID, transfer_syntax_uid=syntax,
                                    instance_number=n, path=rel, size=(root / rel).stat().st_size,
                                    sha256="0" * 64, received_at=timezone.now())
    return study
