"""What the gateway needs to know about a received instance, read from its encoded bytes.

Pure functions: ``instance_meta_parse(file_bytes, ...)`` returns an ``InstanceMeta`` or raises
``InstanceRejected`` carrying the DICOM failure status to answer. Only the header is converted
to Python values; the pixel data is checked for length from its element header (a truncated image
is useless to the radiologist) but never copied or decoded.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset

from dicom_gateway.elements import (
    PIXEL_DATA_TAGS,
    UNDEFINED_LENGTH,
    NotPlain,
    is_value,
    plain_text,
    uid_text,
    us_value,
    walk,
)

# C-STORE failure statuses (PS3.4 Annex B.2.3).
STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_SOP_CLASS_MISMATCH = 0xA900
STATUS_CANNOT_PARSE = 0xC210
STATUS_MISSING_ATTRIBUTE = 0xC211
STATUS_TRUNCATED = 0xC212
STATUS_NOT_AUTHORIZED = 0x0124  # "Refused: Not authorized" (PS3.7 C.5.6): an image of another site's study

# A UID is digits and dots, at most 64 characters (PS3.5 9.1). Checked strictly: UIDs name files on disk.
UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
NATIVE_TRANSFER_SYNTAXES = frozenset({
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
})


class InstanceRejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class OtherPatientId:
    value: str
    issuer: str = ""
    type: str = ""


@dataclass(frozen=True)
class InstanceMeta:
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    modality: str
    transfer_syntax_uid: str
    instance_number: int | None = None
    series_number: int | None = None
    series_description: str = ""
    patient_name: str = ""
    patient_id: str = ""
    patient_id_issuer: str = ""
    other_patient_ids: tuple[OtherPatientId, ...] = field(default_factory=tuple)
    patient_birth_date: dt.date | None = None
    patient_sex: str = ""
    accession_number: str = ""
    study_date: dt.date | None = None
    study_time: dt.time | None = None
    study_description: str = ""
    body_part: str = ""
    station_name: str = ""
    referring_physician: str = ""
    described: bool = False  # the study/series description above was read (see instance_meta_parse)

    def relative_path(self) -> str:
        """Where the instance lives under the storage root (UIDs are validated: no traversal)."""
        return f"{self.study_uid}/{self.series_uid}/{self.sop_instance_uid}.dcm"


def _text(ds: Any, keyword: str, limit: int = 200) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    return str(value).strip()[:limit]


def _int(ds: Any, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def parse_da(value: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(value.strip()[:8], "%Y%m%d").date()
    except (ValueError, AttributeError):
        return None


def parse_tm(value: str) -> dt.time | None:
    digits = (value or "").strip().split(".")[0]
    if not digits.isdigit() or len(digits) < 2:
        return None
    digits = digits.ljust(6, "0")
    try:
        return dt.time(int(digits[0:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        return None


def _uid(ds: Any, keyword: str) -> str:
    value = _text(ds, keyword, 200).rstrip("\x00").strip()
    if not value:
        raise InstanceRejected(STATUS_MISSING_ATTRIBUTE, f"{keyword} missing")
    if len(value) > 64 or not UID_RE.match(value):
        raise InstanceRejected(STATUS_MISSING_ATTRIBUTE, f"{keyword} is not a valid UID")
    return value


def _expected_pixel_bytes(ds: Any) -> int | None:
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits = int(ds.BitsAllocated)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return None
    return _pixel_bytes(rows, cols, samples, frames, bits)


def _pixel_bytes(rows: int, cols: int, samples: int, frames: int, bits: int) -> int:
    return (rows * cols * samples * frames * bits + 7) // 8


PIXEL_TAGS = (b"\xe0\x7f\x10\x00", b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00")  # (7FE0,0010/0008/0009) LE
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"


def _pixel_length(file_bytes: bytes, offset: int, transfer_syntax_uid: str) -> int | None:
    """Length of the pixel data element starting at ``offset`` (where pydicom stopped), read from its
    header without copying the pixels. None when there is no pixel data. Raises InstanceRejected when
    the element announces more bytes than were received."""
    if offset >= len(file_bytes):
        return None
    big = transfer_syntax_uid == EXPLICIT_VR_BIG_ENDIAN
    tag = file_bytes[offset:offset + 4]
    if big:
        tag = tag[1::-1] + tag[3:1:-1]
    if tag not in PIXEL_TAGS:
        return None
    implicit = transfer_syntax_uid == IMPLICIT_VR_LITTLE_ENDIAN
    header = 8 if implicit else 12
    if len(file_bytes) < offset + header:
        raise InstanceRejected(STATUS_TRUNCATED, "pixel data element cut in its header")
    length = int.from_bytes(file_bytes[offset + header - 4:offset + header], "big" if big else "little")
    available = len(file_bytes) - offset - header
    if length == UNDEFINED_LENGTH:  # encapsulated (compressed) fragments: present if anything follows
        return available
    if length > available:
        raise InstanceRejected(STATUS_TRUNCATED, f"pixel data truncated ({available} of {length} bytes)")
    return length


def _dataset_offset(file_bytes: bytes) -> int | None:
    """Where the dataset starts after the preamble and the file meta group (from its group length),
    or None if the bytes do not start like a Part 10 file (then pydicom reads and judges them)."""
    if len(file_bytes) < 144 or file_bytes[128:132] != b"DICM" or file_bytes[132:138] != b"\x02\x00\x00\x00UL":
        return None
    return 144 + int.from_bytes(file_bytes[140:144], "little")


def _at_pixel_data(tag: int, vr: str | None, length: int) -> bool:
    return tag in PIXEL_DATA_TAGS


def _read(file_bytes: bytes, transfer_syntax_uid: str) -> tuple[Any, int | None]:
    """The dataset up to its pixel data, and the pixel data's length. The file meta group is skipped
    (the gateway wrote it; reading it cost 0.4 ms an image)."""
    offset = _dataset_offset(file_bytes)
    if transfer_syntax_uid == DEFLATED or offset is None:
        # Deflated: the offsets are in the inflated stream; read the whole thing the slow way.
        ds: Any = dcmread(BytesIO(file_bytes), force=False)
        pixel = ds.get((0x7FE0, 0x0010)) or ds.get((0x7FE0, 0x0008)) or ds.get((0x7FE0, 0x0009))
        return ds, (len(pixel.value) if pixel is not None and pixel.value is not None else None)
    stream = BytesIO(file_bytes)
    stream.seek(offset)
    ds = read_dataset(stream, transfer_syntax_uid == IMPLICIT_VR_LITTLE_ENDIAN,
                      transfer_syntax_uid != EXPLICIT_VR_BIG_ENDIAN, stop_when=_at_pixel_data)
    return ds, _pixel_length(file_bytes, stream.tell(), transfer_syntax_uid)


def instance_meta_parse(file_bytes: bytes, *, transfer_syntax_uid: str, sop_class_uid: str = "",
                        sop_instance_uid: str = "", describe: Callable[[str], bool] | None = None) -> InstanceMeta:
    """Parse a complete Part 10 byte string (preamble, file meta, dataset) and check it.

    ``sop_class_uid`` / ``sop_instance_uid`` are those of the C-STORE request: the dataset must agree.
    ``describe(series_uid)`` says whether the study and series description (patient, dates, station...)
    is wanted; the gateway only needs it for the first image of a series, and converting those values
    is most of the cost of this function.

    When the description is not wanted, a well-formed little-endian dataset is read by ``_quick_meta``
    (a walk over the element headers, a fifth of pydicom's time); anything it does not accept as
    plainly valid -- including every file that must be refused -- is read and judged by pydicom.
    """
    if describe is not None:
        quick = _quick_meta(file_bytes, transfer_syntax_uid, sop_class_uid, sop_instance_uid)
        if quick is not None and not describe(quick.series_uid):
            return quick
    return _pydicom_meta(file_bytes, transfer_syntax_uid=transfer_syntax_uid, sop_class_uid=sop_class_uid,
                         sop_instance_uid=sop_instance_uid, describe=describe)


def _pydicom_meta(file_bytes: bytes, *, transfer_syntax_uid: str, sop_class_uid: str, sop_instance_uid: str,
                  describe: Callable[[str], bool] | None) -> InstanceMeta:
    try:
        ds, pixel_len = _read(file_bytes, transfer_syntax_uid)
        if not len(ds):
            raise InstanceRejected(STATUS_CANNOT_PARSE, "empty dataset")
    except InstanceRejected:
        raise
    except (InvalidDicomError, EOFError, ValueError, TypeError, KeyError, NotImplementedError, OverflowError,
            AttributeError, IndexError) as exc:
        raise InstanceRejected(STATUS_CANNOT_PARSE, f"dataset does not parse: {exc}") from exc
    try:
        sop_class = _uid(ds, "SOPClassUID")
        sop_uid = _uid(ds, "SOPInstanceUID")
        study_uid = _uid(ds, "StudyInstanceUID")
        series_uid = _uid(ds, "SeriesInstanceUID")
        modality = _text(ds, "Modality", 16).upper()
        if not modality:
            raise InstanceRejected(STATUS_MISSING_ATTRIBUTE, "Modality missing")
        if sop_class_uid and sop_class != sop_class_uid:
            raise InstanceRejected(STATUS_SOP_CLASS_MISMATCH,
                                   f"SOP Class UID {sop_class} does not match the request ({sop_class_uid})")
        if sop_instance_uid and sop_uid != sop_instance_uid:
            raise InstanceRejected(STATUS_SOP_CLASS_MISMATCH, "SOP Instance UID does not match the request")
        if not pixel_len:  # every storage SOP class we accept is an image: a stream cut before its pixels
            raise InstanceRejected(STATUS_TRUNCATED, "no pixel data (truncated?)")
        if transfer_syntax_uid in NATIVE_TRANSFER_SYNTAXES:
            expected = _expected_pixel_bytes(ds)
            if expected is not None and pixel_len < expected:
                raise InstanceRejected(STATUS_TRUNCATED, f"pixel data truncated ({pixel_len} of {expected} bytes)")
        meta = InstanceMeta(sop_class_uid=sop_class, sop_instance_uid=sop_uid, study_uid=study_uid,
                            series_uid=series_uid, modality=modality, transfer_syntax_uid=transfer_syntax_uid,
                            instance_number=_int(ds, "InstanceNumber"))
        if describe is not None and not describe(series_uid):
            return meta
        return _described(meta, ds)
    except InstanceRejected:
        raise
    except Exception as exc:  # a value pydicom cannot convert: the file is malformed
        raise InstanceRejected(STATUS_CANNOT_PARSE, f"dataset does not parse: {exc}") from exc


def _described(meta: InstanceMeta, ds: Any) -> InstanceMeta:
    others: list[OtherPatientId] = []
    for item in ds.get("OtherPatientIDsSequence") or []:
        value = _text(item, "PatientID", 64)
        if value:
            others.append(OtherPatientId(value=value, issuer=_text(item, "IssuerOfPatientID", 64),
                                         type=_text(item, "TypeOfPatientID", 16)))
    return replace(
        meta, series_number=_int(ds, "SeriesNumber"), series_description=_text(ds, "SeriesDescription"),
        patient_name=_text(ds, "PatientName"), patient_id=_text(ds, "PatientID", 64),
        patient_id_issuer=_text(ds, "IssuerOfPatientID", 64), other_patient_ids=tuple(others),
        patient_birth_date=parse_da(_text(ds, "PatientBirthDate")), patient_sex=_text(ds, "PatientSex", 1).upper(),
        accession_number=_text(ds, "AccessionNumber", 64), study_date=parse_da(_text(ds, "StudyDate")),
        study_time=parse_tm(_text(ds, "StudyTime")), study_description=_text(ds, "StudyDescription"),
        body_part=_text(ds, "BodyPartExamined", 64), station_name=_text(ds, "StationName", 64),
        referring_physician=_text(ds, "ReferringPhysicianName"), described=True,
    )


# --- the quick read: element headers only (dicom_gateway.elements), little endian, happy path -------

_SOP_CLASS, _SOP_INSTANCE, _MODALITY = 0x00080016, 0x00080018, 0x00080060
_STUDY, _SERIES, _INSTANCE_NUMBER = 0x0020000D, 0x0020000E, 0x00200013
_SAMPLES, _FRAMES, _ROWS, _COLUMNS, _BITS = 0x00280002, 0x00280008, 0x00280010, 0x00280011, 0x00280100
_WANTED = frozenset({_SOP_CLASS, _SOP_INSTANCE, _MODALITY, _STUDY, _SERIES, _INSTANCE_NUMBER, _SAMPLES, _FRAMES,
                     _ROWS, _COLUMNS, _BITS})
_QUICK_TRANSFER_SYNTAXES_EXCLUDED = frozenset({EXPLICIT_VR_BIG_ENDIAN, DEFLATED})

def _quick_meta(file_bytes: bytes, transfer_syntax_uid: str, sop_class_uid: str,
                sop_instance_uid: str) -> InstanceMeta | None:
    """The undescribed InstanceMeta of a plainly valid little-endian dataset, or None when anything is not
    plain (then pydicom reads it, and refuses it if it must be refused)."""
    offset = _dataset_offset(file_bytes)
    if offset is None or transfer_syntax_uid in _QUICK_TRANSFER_SYNTAXES_EXCLUDED:
        return None
    try:
        found, pixel_at = walk(file_bytes, offset, transfer_syntax_uid == IMPLICIT_VR_LITTLE_ENDIAN, _WANTED)
        uids = [uid_text(found, tag) for tag in (_SOP_CLASS, _SOP_INSTANCE, _STUDY, _SERIES)]
        modality = plain_text(found, _MODALITY)[:16].upper()
        number = is_value(found, _INSTANCE_NUMBER)
        rows, cols, bits = us_value(found, _ROWS), us_value(found, _COLUMNS), us_value(found, _BITS)
        samples = us_value(found, _SAMPLES) or 1
        frames = is_value(found, _FRAMES) or 1
        pixel_len = _pixel_length(file_bytes, pixel_at, transfer_syntax_uid)
    except (NotPlain, InstanceRejected, UnicodeDecodeError, struct.error):
        return None
    if not all(len(uid) <= 64 and UID_RE.match(uid) for uid in uids) or not modality or not pixel_len:
        return None
    sop_class, sop_uid, study_uid, series_uid = uids
    if (sop_class_uid and sop_class != sop_class_uid) or (sop_instance_uid and sop_uid != sop_instance_uid):
        return None
    if (transfer_syntax_uid in NATIVE_TRANSFER_SYNTAXES and rows is not None and cols is not None and bits is not None
            and pixel_len < _pixel_bytes(rows, cols, samples, frames, bits)):
        return None
    return InstanceMeta(sop_class_uid=sop_class, sop_instance_uid=sop_uid, study_uid=study_uid,
                        series_uid=series_uid, modality=modality, transfer_syntax_uid=transfer_syntax_uid,
                        instance_number=number)
