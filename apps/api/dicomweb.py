"""DICOMweb (PS3.18) without HTTP: QIDO-RS matching and DICOM JSON of the stored rows, the multipart framing of
WADO-RS, transfer-syntax negotiation, and frames read from the stored files.

Invariants: every query here starts from the caller's visible studies (``apps.api.selectors.studies_visible_to``,
the one case-visibility rule of the web app and the API); files are opened only through
``apps.worklist.imaging.instance_file`` (under the storage root, never a caller's path)."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from apps.core.errors import ApplicationError as ValidationFailed  # 400, a problem document
from apps.worklist.dicom_json import attr as _attr

UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
EXPLICIT_LE = "1.2.840.10008.1.2.1"
NATIVE_LE = ("1.2.840.10008.1.2", EXPLICIT_LE)  # Implicit and Explicit VR Little Endian
CHUNK = 1024 * 1024  # a CT slice (~0.5 MB) in one read and one write

# QIDO-RS matching keys: DICOM keyword or tag -> (keyword, level, model lookup). Levels: study, series, instance.
KEYS: dict[str, tuple[str, str]] = {
    "StudyInstanceUID": ("study", "study_uid"), "0020000D": ("study", "study_uid"),
    "PatientID": ("study", "patient_id"), "00100020": ("study", "patient_id"),
    "PatientName": ("study", "patient_name"), "00100010": ("study", "patient_name"),
    "AccessionNumber": ("study", "accession_number"), "00080050": ("study", "accession_number"),
    "StudyDate": ("study", "study_datetime"), "00080020": ("study", "study_datetime"),
    "ModalitiesInStudy": ("study", "modality"), "00080061": ("study", "modality"),
    "SeriesInstanceUID": ("series", "series_uid"), "0020000E": ("series", "series_uid"),
    "Modality": ("series", "modality"), "00080060": ("series", "modality"),
    "SeriesNumber": ("series", "number"), "00200011": ("series", "number"),
    "SOPInstanceUID": ("instance", "sop_instance_uid"), "00080018": ("instance", "sop_instance_uid"),
    "InstanceNumber": ("instance", "instance_number"), "00200013": ("instance", "instance_number"),
}
# Not matching keys: how the result is shaped (all accepted; includefield may name any attribute).
CONTROL = {"limit", "offset", "includefield", "fuzzymatching"}
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def _int(value: str, name: str, *, minimum: int, maximum: int) -> int:
    if not value.isdigit() or not minimum <= int(value) <= maximum:
        raise ValidationFailed(f"{name} must be a whole number from {minimum} to {maximum}.")
    return int(value)


def page_of(params: Any) -> Page:
    return Page(limit=_int(params.get("limit", str(MAX_LIMIT)), "limit", minimum=1, maximum=MAX_LIMIT),
                offset=_int(params.get("offset", "0"), "offset", minimum=0, maximum=10**9))


def _wildcard(field: str, value: str) -> Q:
    """DICOM wildcard matching (* and ?) on a text field, case-insensitive as most PACS do for names."""
    if "*" not in value and "?" not in value:
        return Q(**{f"{field}__iexact": value})
    pattern = "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value) + "$"
    return Q(**{f"{field}__iregex": pattern})


def _date_range(field: str, value: str) -> Q:
    """DA matching: a date, or a range A-B, -B, A- (PS3.4 C.2.2.2.5)."""
    def day(text: str) -> dt.date:
        try:
            return dt.datetime.strptime(text, "%Y%m%d").date()
        except ValueError as exc:
            raise ValidationFailed(f"StudyDate {value!r}: dates are YYYYMMDD, ranges A-B, -B or A-.") from exc

    start, sep, end = value.partition("-")
    q = Q()
    if start:
        q &= Q(**{f"{field}__date__gte": day(start)})
    if end or not sep:
        q &= Q(**{f"{field}__date__lte": day(end or start)})
    return q


def matching(params: Any, level: str, prefix: dict[str, str]) -> Q:
    """The Q of the QIDO-RS matching keys that apply at ``level`` or above (``prefix`` reaches the study or series
    row from the queried model). Unknown keys are refused, not ignored: a filter silently dropped returns data
    the caller did not ask for."""
    q = Q()
    order = ["study", "series", "instance"]
    for key in params:
        if key in CONTROL:
            continue
        if key not in KEYS:
            raise ValidationFailed(f"{key!r} is not a matching key of this service (keys: "
                                   f"{', '.join(k for k in KEYS if not k[0].isdigit())}).")
        key_level, lookup = KEYS[key]
        if order.index(key_level) > order.index(level):
            raise ValidationFailed(f"{key} is not a matching key at the {level} level.")
        field = prefix[key_level] + lookup
        for value in params.getlist(key):
            if lookup == "study_datetime":
                q &= _date_range(field, value)
            elif lookup.endswith("_uid"):
                uids = [u for u in value.replace("\\", ",").split(",") if u]
                if not all(UID_RE.match(u) and len(u) <= 64 for u in uids):
                    raise ValidationFailed(f"{key}: UIDs are digits and dots, at most 64 characters.")
                q &= Q(**{f"{field}__in": uids})
            elif lookup in ("number", "instance_number"):
                q &= Q(**{field: _int(value, key, minimum=-(2**31), maximum=2**31 - 1)})
            elif lookup == "modality":
                q &= Q(**{f"{field}__icontains": value}) if key_level == "study" else Q(**{f"{field}__iexact": value})
            else:
                q &= _wildcard(field, value)
    return q


# --- DICOM JSON (PS3.18 F.2) -------------------------------------------------------------------------------


def _pn(name: str) -> dict[str, Any]:
    return {"vr": "PN", "Value": [{"Alphabetic": name}]} if name else {"vr": "PN"}


def study_json(study: Any, *, base: str) -> dict[str, Any]:
    when = study.study_datetime
    return {
        "00080020": _attr("DA", when.strftime("%Y%m%d") if when else None),
        "00080030": _attr("TM", when.strftime("%H%M%S") if when else None),
        "00080050": _attr("SH", study.accession_number),
        "00080061": _attr("CS", *[m for m in study.modality.replace("\\", ",").split(",") if m]),
        "00081030": _attr("LO", study.description),
        "00081190": _attr("UR", f"{base}/studies/{study.study_uid}"),
        "00100010": _pn(study.patient_name),
        "00100020": _attr("LO", study.patient_id),
        "00100030": _attr("DA", study.patient_birth_date.strftime("%Y%m%d") if study.patient_birth_date else None),
        "00100040": _attr("CS", study.patient_sex),
        "0020000D": _attr("UI", study.study_uid),
        "00201206": _attr("IS", study.num_series),
        "00201208": _attr("IS", study.num_instances),
    }


def series_json(series: Any, *, base: str) -> dict[str, Any]:
    return {
        "00080060": _attr("CS", series.modality),
        "0008103E": _attr("LO", series.description),
        "00081190": _attr("UR", f"{base}/studies/{series.study.study_uid}/series/{series.series_uid}"),
        "00180015": _attr("CS", series.body_part),
        "0020000D": _attr("UI", series.study.study_uid),
        "0020000E": _attr("UI", series.series_uid),
        "00200011": _attr("IS", series.number),
        "00201209": _attr("IS", series.num_instances),
    }


def instance_json(inst: Any, *, base: str) -> dict[str, Any]:
    study_uid, series_uid = inst.study.study_uid, inst.series.series_uid
    return {
        "00080016": _attr("UI", inst.sop_class_uid),
        "00080018": _attr("UI", inst.sop_instance_uid),
        "00081190": _attr("UR", f"{base}/studies/{study_uid}/series/{series_uid}/instances/{inst.sop_instance_uid}"),
        "00083002": _attr("UI", inst.transfer_syntax_uid),
        "0020000D": _attr("UI", study_uid),
        "0020000E": _attr("UI", series_uid),
        "00200013": _attr("IS", inst.instance_number),
    }


def page(qs: QuerySet[Any], p: Page) -> list[Any]:
    return list(qs[p.offset:p.offset + p.limit])


# --- Negotiation and multipart ----------------------------------------------------------------------------


def accepted_transfer_syntax(accept: str, *, part_type: str) -> str | None:
    """The transfer syntax the client asks for in a multipart ``Accept`` of ``part_type`` parts: "*" (as stored)
    when none is named or any is accepted; None when the client accepts no such parts at all."""
    if not accept or "*/*" in accept:
        return "*"
    for item in accept.split(","):
        media, _, rest = item.strip().partition(";")
        params = dict(p.strip().split("=", 1) for p in rest.split(";") if "=" in p)
        params = {k.strip().lower(): v.strip().strip('"') for k, v in params.items()}
        if media.strip() == "multipart/related" and params.get("type", part_type) in (part_type, "*/*", "*"):
            return params.get("transfer-syntax", "*")
        if media.strip() == part_type:
            return params.get("transfer-syntax", "*")
    return None


def boundary() -> str:
    return "pds-" + secrets.token_hex(12)


def multipart(parts: Iterable[tuple[str, Iterable[bytes]]], mark: str) -> Iterator[bytes]:
    """Each (content type, chunks) as one part of a multipart/related body, streamed."""
    for content_type, chunks in parts:
        yield f"\r\n--{mark}\r\nContent-Type: {content_type}\r\n\r\n".encode()
        yield from chunks
    yield f"\r\n--{mark}--\r\n".encode()


def file_chunks(path: Any) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def explicit_le_file(path: Any) -> Iterator[bytes]:
    """The stored instance transcoded to Explicit VR Little Endian (decoded pixel data), as one chunk."""
    from io import BytesIO

    import pydicom

    ds = pydicom.dcmread(str(path))
    if ds.file_meta.TransferSyntaxUID != EXPLICIT_LE:
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            ds.decompress()
        else:
            ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(EXPLICIT_LE)
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True, little_endian=True, implicit_vr=False)
    yield buf.getvalue()


# PS3.18 table 8.7.3-2: the media type of a compressed frame by its transfer syntax (rendered as Orthanc does, with
# the syntax as a parameter: OHIF's loader picks its decoder from it).
FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg", "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls", "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2", "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.201": "image/jphc", "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc", "1.2.840.10008.1.2.5": "image/x-dicom-rle",
}


def frames_of(path: Any, numbers: list[int], *, as_stored: bool = False) -> tuple[str, list[bytes]]:
    """(media type of the parts, the bytes of each requested frame, 1-based). ``as_stored`` (the client accepts
    any syntax) and the file encapsulated in a syntax of :data:`FRAME_MEDIA_TYPES`: the stored compressed bytes,
    no decoding here (OHIF decodes them in its workers, as from Orthanc). Otherwise the native pixels,
    uncompressed little endian."""
    import pydicom
    from pydicom.encaps import get_frame

    from apps.worklist.imaging import frame_count, frame_pixels

    ds = pydicom.dcmread(str(path))
    count = frame_count(ds)
    if any(n < 1 or n > count for n in numbers):
        raise IndexError(f"frames 1 to {count}")
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if as_stored and syntax in FRAME_MEDIA_TYPES and "PixelData" in ds:
        return (f"{FRAME_MEDIA_TYPES[syntax]}; transfer-syntax={syntax}",
                [get_frame(ds.PixelData, n - 1, number_of_frames=count) for n in numbers])
    bits = int(ds.get("BitsAllocated", 0))
    if syntax in NATIVE_LE and bits in (8, 16, 32) and "PixelData" in ds:
        # Already the bytes asked for: each frame sliced from the pixel data, no decoding (a third of the CPU of
        # a frame request, which a viewer makes once per slice).
        size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * bits // 8
        data = ds.PixelData
        if len(data) >= size * count:
            return (f"application/octet-stream; transfer-syntax={EXPLICIT_LE}",
                    [bytes(data[(n - 1) * size:n * size]) for n in numbers])
    out = []
    for n in numbers:
        pixels = frame_pixels(ds, n - 1)
        out.append(pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes())
    return f"application/octet-stream; transfer-syntax={EXPLICIT_LE}", out
