"""STOW-RS (PS3.18 10.5): instances posted as multipart/related; type="application/dicom", stored by the gateway's
own ingest service (``dicom_gateway.handlers.Gateway.store``: the same checks, durable file and directory before
the row, dedupe of identical resends, quarantine of conflicting copies), answered as a DICOM JSON store response.

A read-write API key stores for its own establishment only: the study is recorded as that site's (as a calling AE
title is mapped to its establishment by its DICOM node), and an instance of a study another site sent is refused.
"""

from __future__ import annotations

import mmap
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from django.conf import settings

from apps.core.errors import ApplicationError
from apps.studies.models import Study

# PS3.18 table 10.5.3-2 and PS3.4 annex B failure reasons.
PROCESSING_FAILURE = 0x0110
SOP_CLASS_NOT_SUPPORTED = 0x0122
NOT_AUTHORIZED = 0x0124
STUDY_MISMATCH = 0xA900
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
CANNOT_UNDERSTAND = 0xC000
COPY_CHUNK = 1024 * 1024
MAX_HEADERS = 16 * 1024  # of a part's headers


def ingest() -> Any:
    """The ingest service of this process (``dicom_gateway.handlers.ingest_service``)."""
    from dicom_gateway.handlers import ingest_service

    return ingest_service()


@dataclass(frozen=True)
class Outcome:
    sop_class_uid: str
    sop_instance_uid: str
    status: int
    reason: str = ""
    study_uid: str = ""
    series_uid: str = ""


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary of a STOW-RS request's Content-Type, checked before the body is read."""
    media, _, rest = content_type.partition(";")
    params = {}
    for item in rest.split(";"):
        key, eq, value = item.strip().partition("=")
        if eq:
            params[key.strip().lower()] = value.strip().strip('"')
    if media.strip().lower() != "multipart/related" or params.get("type", "").lower() != "application/dicom":
        raise ApplicationError('STOW-RS takes multipart/related; type="application/dicom".',
                               code="unsupported_media_type", status_code=415)
    mark = params.get("boundary", "")
    if not mark:
        raise ApplicationError("The multipart body has no boundary.")
    return mark.encode("latin-1")


def too_large(limit: int) -> ApplicationError:
    return ApplicationError(f"The request body is larger than this service accepts ({limit} bytes, "
                            "PDS_STOW_MAX_BYTES): send the study in several requests.", code="too_large",
                            status_code=413)


@contextmanager
def body_on_disk(stream: Any, *, limit: int) -> Iterator[Any]:
    """The request body copied in chunks to an anonymous file beside the image store's incoming files, mapped
    read-only: a large STOW-RS request is never held in memory, only one instance at a time
    (:func:`part_spans`). Past ``limit`` bytes (with or without a Content-Length) the copy stops: 413."""
    directory = ingest().root / ".incoming"
    with tempfile.TemporaryFile(dir=directory, prefix="stow-") as fh:
        size = 0
        while stream is not None and (chunk := stream.read(COPY_CHUNK)):
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            fh.write(chunk)
        fh.flush()
        if size == 0:
            yield b""
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield mapped


def part_spans(mark: bytes, body: Any) -> list[tuple[str, int, int]]:
    """(content type, start, end) of each part of a multipart/related ``body`` (bytes or a memory map): offsets,
    so that a part is copied only when it is stored."""
    delimiter = b"--" + mark
    cuts = []
    at = body.find(delimiter)
    while at >= 0:
        cuts.append(at)
        at = body.find(delimiter, at + len(delimiter))
    if len(cuts) < 2 or body[cuts[-1] + len(delimiter):cuts[-1] + len(delimiter) + 2] != b"--":
        raise ApplicationError("The multipart body is not closed by its final boundary.")
    spans: list[tuple[str, int, int]] = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        start += len(delimiter)
        if body[start:start + 2] == b"\r\n":
            start += 2
        head_end = body.find(b"\r\n\r\n", start, min(end, start + MAX_HEADERS))
        head = b"" if head_end < 0 else body[start:head_end]
        data_start = start if head_end < 0 else head_end + 4
        if body[end - 2:end] == b"\r\n" and end - 2 >= data_start:
            end -= 2
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.decode("latin-1").partition(":") for line in head.split(b"\r\n") if line)}
        spans.append((headers.get("content-type", "application/dicom"), data_start, end))
    if not spans:
        raise ApplicationError("The multipart body has no instance.")
    return spans


def parts_of(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """The (content type, bytes) of each part of a multipart/related body whose root type is application/dicom."""
    return [(ctype, body[start:end]) for ctype, start, end in part_spans(boundary_of(content_type), body)]


def instance_store(*, data: bytes, content_type: str, site_id: int, sender_name: str,
                   study_uid: str = "") -> Outcome:
    """Check and store one posted Part 10 file for ``site_id``; never raises for what the sender sent."""
    from dicom_gateway.checks import Refusal, file_meta_of, image_check
    from dicom_gateway.config import STORAGE_SOP_CLASSES, TRANSFER_SYNTAXES
    from dicom_gateway.handlers import Sender
    from dicom_gateway.metadata import InstanceRejected, instance_meta_parse

    if content_type.split(";")[0].strip().lower() != "application/dicom":
        return Outcome("", "", CANNOT_UNDERSTAND, f"a part of type {content_type[:40]} is not application/dicom")
    if data[128:132] != b"DICM" and data[:2] == b"\x02\x00":  # the file meta without the preamble (pydicom's
        data = bytes(128) + b"DICM" + data                        # dcmwrite of a dataset read without one)
    try:
        meta, offset = file_meta_of(data)
    except InstanceRejected as exc:
        return Outcome("", "", exc.status, exc.reason)
    sop_class, sop_uid, syntax = meta.get(0x00020002, ""), meta.get(0x00020003, ""), meta.get(0x00020010, "")
    if sop_class not in STORAGE_SOP_CLASSES:
        return Outcome(sop_class, sop_uid, SOP_CLASS_NOT_SUPPORTED, f"SOP class {sop_class} is not stored here")
    if syntax not in TRANSFER_SYNTAXES:
        return Outcome(sop_class, sop_uid, TRANSFER_SYNTAX_NOT_SUPPORTED, f"transfer syntax {syntax} is not accepted")
    try:  # the file meta against the dataset (the request's own check is the gateway's)
        image_check(data, transfer_syntax_uid=syntax, sop_class_uid=sop_class, sop_instance_uid=sop_uid)
        parsed = instance_meta_parse(data, transfer_syntax_uid=syntax, sop_class_uid=sop_class,
                                     sop_instance_uid=sop_uid)
    except InstanceRejected as exc:
        return Outcome(sop_class, sop_uid, exc.status, exc.reason)
    except Exception as exc:  # anything the parser trips on is a file we cannot understand
        return Outcome(sop_class, sop_uid, 0xC210, f"cannot understand: {exc}")
    if study_uid and parsed.study_uid != study_uid:
        return Outcome(sop_class, sop_uid, STUDY_MISMATCH, "the instance is not of the study of the request")
    if Study.objects.filter(study_uid=parsed.study_uid).exclude(site_id=site_id).exists():
        return Outcome(sop_class, sop_uid, NOT_AUTHORIZED, "this study was sent by another establishment")
    sender = Sender(calling_ae=sender_name[:16], address="", site_id=site_id)
    status = ingest().store(sender, sop_class=sop_class, sop_uid=sop_uid, ts=syntax,
                            data_set=BytesIO(data[offset:]))
    reason = status.reason if isinstance(status, Refusal) else ""
    return Outcome(sop_class, sop_uid, int(status), reason, parsed.study_uid, parsed.series_uid)


def max_bytes() -> int:
    return int(settings.PDS_STOW_MAX_BYTES)


def response_json(outcomes: list[Outcome], *, base: str) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the store response (PS3.18 10.5.3): 200 all stored, 202 some, 409 none."""
    stored = [o for o in outcomes if o.status == 0]
    failed = [o for o in outcomes if o.status != 0]
    body: dict[str, Any] = {}
    if stored:
        first = stored[0]
        body["00081190"] = {"vr": "UR", "Value": [f"{base}/studies/{first.study_uid}"]}
        body["00081199"] = {"vr": "SQ", "Value": [{
            "00081150": {"vr": "UI", "Value": [o.sop_class_uid]},
            "00081155": {"vr": "UI", "Value": [o.sop_instance_uid]},
            "00081190": {"vr": "UR", "Value": [
                f"{base}/studies/{o.study_uid}/series/{o.series_uid}/instances/{o.sop_instance_uid}"]},
        } for o in stored]}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": [{
            **({"00081150": {"vr": "UI", "Value": [o.sop_class_uid]}} if o.sop_class_uid else {"00081150": {"vr": "UI"}}),
            **({"00081155": {"vr": "UI", "Value": [o.sop_instance_uid]}} if o.sop_instance_uid
               else {"00081155": {"vr": "UI"}}),
            "00081197": {"vr": "US", "Value": [o.status]},
        } for o in failed]}
    return (200 if not failed else 202 if stored else 409), body
