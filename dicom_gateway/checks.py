"""What the gateway checks before it acknowledges an image: one walk over the encoded bytes, no pixel decode.

``image_check(file_bytes, transfer_syntax_uid=..., sop_class_uid=..., sop_instance_uid=...)`` raises
``InstanceRejected`` (a permanent 0xA9xx/0xC2xx failure with its reason) unless:

- the file meta (MediaStorageSOPClassUID / MediaStorageSOPInstanceUID / TransferSyntaxUID), the request and the
  dataset's SOPClassUID / SOPInstanceUID agree, and the Modality is one the SOP class allows (``MODALITIES``);
- every element header parses, the values fit the bytes, sequences are nested at most ``MAX_DEPTH`` deep;
- the image pixel attributes are present and sane (Rows, Columns, SamplesPerPixel, BitsAllocated, BitsStored,
  PixelRepresentation, PhotometricInterpretation, PlanarConfiguration, NumberOfFrames);
- the pixel data is framed as its transfer syntax says: native, a defined length equal to Rows x Columns x
  frames x samples x BitsAllocated / 8 (plus one pad byte when odd); encapsulated, an offset table item, at
  least one fragment item, the sequence delimiter, and after it only well-formed elements that sort after it;
- the values stored in the database fit it: InstanceNumber and SeriesNumber in 32 bits, no NUL in
  PatientName, PatientID or AccessionNumber.

Deflated datasets are inflated first (bounded). Everything else is a walk by offsets with ``struct``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from dicom_gateway.metadata import (
    DEFLATED,
    EXPLICIT_VR_BIG_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    NATIVE_TRANSFER_SYNTAXES,
    STATUS_CANNOT_PARSE,
    STATUS_SOP_CLASS_MISMATCH,
    STATUS_TRUNCATED,
    InstanceRejected,
)

STATUS_VALUE_OUT_OF_RANGE = 0xC213  # "cannot understand" range (PS3.4 B.2.3): a value the record cannot hold
MAX_DEPTH = 32
MAX_INFLATED = 2 * 1024**3
UNDEFINED = 0xFFFFFFFF
INT32 = (-(2**31), 2**31 - 1)

_CT, _MR = frozenset({"CT"}), frozenset({"MR"})
_XR = frozenset({"CR", "DX"})
# SOP class -> the modalities its IOD allows (PS3.3 A). A class not listed (secondary capture, anything new) is
# not checked: its IOD does not constrain the modality, or we do not know it well enough to refuse.
MODALITIES: dict[str, frozenset[str]] = {
    "1.2.840.10008.5.1.4.1.1.2": _CT, "1.2.840.10008.5.1.4.1.1.2.1": _CT, "1.2.840.10008.5.1.4.1.1.2.2": _CT,
    "1.2.840.10008.5.1.4.1.1.4": _MR, "1.2.840.10008.5.1.4.1.1.4.1": _MR, "1.2.840.10008.5.1.4.1.1.4.2": _MR,
    "1.2.840.10008.5.1.4.1.1.4.3": _MR, "1.2.840.10008.5.1.4.1.1.4.4": _MR,
    "1.2.840.10008.5.1.4.1.1.1": _XR, "1.2.840.10008.5.1.4.1.1.1.1": _XR, "1.2.840.10008.5.1.4.1.1.1.1.1": _XR,
    "1.2.840.10008.5.1.4.1.1.1.2": frozenset({"MG"}), "1.2.840.10008.5.1.4.1.1.1.2.1": frozenset({"MG"}),
    "1.2.840.10008.5.1.4.1.1.6.1": frozenset({"US"}), "1.2.840.10008.5.1.4.1.1.3.1": frozenset({"US", "IVUS"}),
    "1.2.840.10008.5.1.4.1.1.6.2": frozenset({"US"}),
    "1.2.840.10008.5.1.4.1.1.20": frozenset({"NM"}), "1.2.840.10008.5.1.4.1.1.128": frozenset({"PT"}),
    "1.2.840.10008.5.1.4.1.1.130": frozenset({"PT"}), "1.2.840.10008.5.1.4.1.1.128.1": frozenset({"PT"}),
    "1.2.840.10008.5.1.4.1.1.12.1": frozenset({"XA"}), "1.2.840.10008.5.1.4.1.1.12.1.1": frozenset({"XA"}),
    "1.2.840.10008.5.1.4.1.1.12.2": frozenset({"RF"}), "1.2.840.10008.5.1.4.1.1.12.2.1": frozenset({"RF"}),
}
PHOTOMETRIC = {"MONOCHROME1": 1, "MONOCHROME2": 1, "PALETTE COLOR": 1, "RGB": 3, "YBR_FULL": 3,
               "YBR_FULL_422": 3, "YBR_PARTIAL_420": 3, "YBR_ICT": 3, "YBR_RCT": 3, "YBR_PARTIAL_422": 3}

_LONG = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_SHORT = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN",
                    b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"})
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL, FLOAT_PIXEL, DOUBLE_PIXEL = 0x7FE00010, 0x7FE00008, 0x7FE00009
_PIXEL_TAGS = frozenset({PIXEL, FLOAT_PIXEL, DOUBLE_PIXEL})
_SOP_CLASS, _SOP_INSTANCE, _MODALITY = 0x00080016, 0x00080018, 0x00080060
_ACCESSION, _PATIENT_NAME, _PATIENT_ID = 0x00080050, 0x00100010, 0x00100020
_SERIES_NUMBER, _INSTANCE_NUMBER = 0x00200011, 0x00200013
_SAMPLES, _PHOTOMETRIC, _PLANAR, _FRAMES = 0x00280002, 0x00280004, 0x00280006, 0x00280008
_ROWS, _COLUMNS, _BITS, _STORED, _REPRESENTATION = 0x00280010, 0x00280011, 0x00280100, 0x00280101, 0x00280103
WANTED = frozenset({_SOP_CLASS, _SOP_INSTANCE, _MODALITY, _ACCESSION, _PATIENT_NAME, _PATIENT_ID, _SERIES_NUMBER,
                    _INSTANCE_NUMBER, _SAMPLES, _PHOTOMETRIC, _PLANAR, _FRAMES, _ROWS, _COLUMNS, _BITS, _STORED,
                    _REPRESENTATION})


class Refusal(int):
    """A permanent failure status (0xA9xx, 0xC2xx) with its reason, as the store path returns it."""

    reason: str

    def __new__(cls, status: int, reason: str) -> Refusal:
        made = super().__new__(cls, status)
        made.reason = reason
        return made

    def response(self) -> Any:
        """The C-STORE response: the status and the reason as its Error Comment (LO, 64 characters)."""
        from pydicom.dataset import Dataset

        rsp = Dataset()
        rsp.Status = int(self)
        rsp.ErrorComment = self.reason.encode("ascii", "replace").decode()[:64]
        return rsp


def _bad(reason: str, status: int = STATUS_CANNOT_PARSE) -> InstanceRejected:
    return InstanceRejected(status, reason)


@lru_cache(maxsize=4096)
def _dictionary_sq(tag: int) -> bool:
    """Is ``tag`` a sequence in the data dictionary (implicit VR: the only way to know)?"""
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return False


@dataclass
class Pixels:
    tag: int = 0
    length: int = 0  # UNDEFINED when encapsulated
    fragments: int = 0


@dataclass
class _Walk:
    buf: bytes
    implicit: bool
    big: bool
    found: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)
    pixels: Pixels | None = None
    first_fragment: bytes = b""

    def __post_init__(self) -> None:
        order = ">" if self.big else "<"
        self.u16 = struct.Struct(order + "H")
        self.u32 = struct.Struct(order + "I")
        self.tag = struct.Struct(order + "HH")
        self.header = struct.Struct(order + ("HHI" if self.implicit else "HH2sH"))

    def element(self, pos: int, end: int) -> tuple[int, bytes, int, int]:
        """(tag, VR or b"", value offset, value length) of the element header at ``pos``."""
        if pos + 8 > end:
            raise _bad("element header cut short", STATUS_TRUNCATED)
        if self.implicit:
            group, elem, length = self.header.unpack_from(self.buf, pos)
            return group << 16 | elem, b"", pos + 8, length
        group, elem, vr, length = self.header.unpack_from(self.buf, pos)
        if vr in _SHORT:
            return group << 16 | elem, vr, pos + 8, length
        if group == 0xFFFE:  # items and delimiters have no VR, even in explicit VR
            return group << 16 | elem, b"", pos + 8, self.u32.unpack_from(self.buf, pos + 4)[0]
        if vr in _LONG:
            if pos + 12 > end:
                raise _bad("element header cut short", STATUS_TRUNCATED)
            return group << 16 | elem, vr, pos + 12, self.u32.unpack_from(self.buf, pos + 8)[0]
        raise _bad(f"element ({group:04X},{elem:04X}) has no valid VR")

    def dataset(self, pos: int, end: int, depth: int, *, top: bool = False, item: bool = False) -> int:
        """Walk elements from ``pos``: to ``end``, or (``item``) to an item delimiter; returns where it stopped."""
        after_pixels = 0
        element, found, buf, wanted = self.element, self.found, self.buf, WANTED
        while pos < end:
            tag, vr, vpos, length = element(pos, end)
            if tag >= 0x7FE00000 or tag < 0x00080000:  # the rare tags: pixels, items, what follows the pixels
                if tag == _ITEM_END and item:
                    return vpos
                if tag >> 16 == 0xFFFE:
                    raise _bad(f"item tag ({tag >> 16:04X},{tag & 0xFFFF:04X}) outside a sequence")
            if after_pixels and tag <= after_pixels:
                raise _bad("bytes after the pixel data are not elements")
            if length == UNDEFINED:
                if tag in _PIXEL_TAGS:
                    pos = self.fragments(vpos, end, depth, top=top)
                elif vr in (b"SQ", b"UN", b""):
                    pos = self.items(vpos, end, depth + 1, None)
                else:
                    raise _bad(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) has an undefined length")
            else:
                if vpos + length > end:
                    raise _bad(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) longer than the data", STATUS_TRUNCATED)
                if vr == b"SQ" or (not vr and _dictionary_sq(tag)):
                    self.items(vpos, vpos + length, depth + 1, vpos + length)
                elif top and tag in wanted:
                    found[tag] = (buf[vpos:vpos + length], vr)
                elif top and tag in _PIXEL_TAGS:
                    self.pixels = Pixels(tag=tag, length=length)
                pos = vpos + length
            if top and tag in _PIXEL_TAGS:
                after_pixels = tag
        if item:
            raise _bad("item without its delimiter", STATUS_TRUNCATED)
        return pos

    def items(self, pos: int, end: int, depth: int, defined_end: int | None) -> int:
        """A sequence's items; returns the offset after it (its delimiter when of undefined length)."""
        if depth > MAX_DEPTH:
            raise _bad(f"sequences nested more than {MAX_DEPTH} deep")
        while defined_end is None or pos < defined_end:
            tag, _, vpos, length = self.element(pos, end)
            if tag == _SEQ_END and defined_end is None:
                return vpos
            if tag != _ITEM:
                raise _bad("sequence item expected")
            if length == UNDEFINED:
                pos = self.dataset(vpos, end, depth, item=True)
            else:
                if vpos + length > end:
                    raise _bad("sequence item longer than its sequence", STATUS_TRUNCATED)
                self.dataset(vpos, vpos + length, depth)
                pos = vpos + length
        if pos != defined_end:
            raise _bad("sequence items overrun the sequence")
        return pos

    def fragments(self, pos: int, end: int, depth: int, *, top: bool) -> int:
        """Encapsulated pixel data: the offset table item, fragment items, the sequence delimiter."""
        count = 0
        while True:
            if pos + 8 > end:
                raise _bad("encapsulated pixel data without its sequence delimiter", STATUS_TRUNCATED)
            group, elem = self.tag.unpack_from(self.buf, pos)
            length = self.u32.unpack_from(self.buf, pos + 4)[0]
            tag = group << 16 | elem
            pos += 8
            if tag == _SEQ_END:
                break
            if tag != _ITEM or length == UNDEFINED or pos + length > end:
                raise _bad("encapsulated pixel data: a fragment is not a well-formed item")
            if count == 0 and length % 4:
                raise _bad("encapsulated pixel data: the basic offset table is not a list of offsets")
            if count == 1 and top:
                self.first_fragment = self.buf[pos:pos + min(length, 64)]
            pos += length
            count += 1
        if count < 2:
            raise _bad("encapsulated pixel data has no fragment")
        if top:
            self.pixels = Pixels(tag=PIXEL, length=UNDEFINED, fragments=count - 1)
        return pos


def file_meta_of(file_bytes: bytes) -> tuple[dict[int, str], int]:
    """The file meta group's values by tag and where the dataset starts (refused if not a Part 10 file)."""
    return _meta_group(file_bytes)


def _meta_group(file_bytes: bytes) -> tuple[dict[int, str], int]:
    """The file meta group's UIDs (explicit VR little endian, PS3.10 7.1) and where the dataset starts."""
    if len(file_bytes) < 144 or file_bytes[128:132] != b"DICM":
        raise _bad("not a DICOM Part 10 file")
    walk = _Walk(file_bytes, implicit=False, big=False)
    pos, out = 132, {}
    while pos < len(file_bytes):
        group = struct.unpack_from("<H", file_bytes, pos)[0]
        if group != 0x0002:
            break
        tag, _, vpos, length = walk.element(pos, len(file_bytes))
        if length == UNDEFINED or vpos + length > len(file_bytes):
            raise _bad("file meta element cut short", STATUS_TRUNCATED)
        out[tag] = file_bytes[vpos:vpos + length].rstrip(b"\x00 ").decode("ascii", "replace")
        pos = vpos + length
    return out, pos


def _text(found: dict[int, tuple[bytes, bytes]], tag: int) -> str:
    value = found.get(tag)
    return value[0].decode("latin-1").strip("\x00 ") if value is not None else ""


def _us(walk: _Walk, tag: int, name: str, *, required: bool = True) -> int | None:
    value = walk.found.get(tag)
    if value is None:
        if required:
            raise _bad(f"{name} missing", STATUS_SOP_CLASS_MISMATCH)
        return None
    raw, vr = value
    if len(raw) != 2 or vr not in (b"", b"US", b"SS"):
        raise _bad(f"{name} is not one unsigned short", STATUS_SOP_CLASS_MISMATCH)
    return int(walk.u16.unpack(raw)[0])


def _is(text: str, name: str) -> int | None:
    """An IS value: None if absent; refused if present and not one whole number in 32 bits."""
    if not text:
        return None
    try:
        number = int(text.strip())
    except ValueError:
        return None  # not a number: recorded without it, as before
    if not INT32[0] <= number <= INT32[1]:
        raise _bad(f"{name} {number} does not fit in 32 bits", STATUS_VALUE_OUT_OF_RANGE)
    return number


def _dataset_of(file_bytes: bytes, offset: int, transfer_syntax_uid: str) -> bytes:
    if transfer_syntax_uid != DEFLATED:
        return file_bytes
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        data = inflater.decompress(file_bytes[offset:], MAX_INFLATED)
    except zlib.error as exc:
        raise _bad(f"deflated dataset does not inflate: {exc}") from exc
    if inflater.unconsumed_tail:
        raise _bad("deflated dataset too large")
    return b"\x00" * offset + data


def image_check(file_bytes: bytes, *, transfer_syntax_uid: str, sop_class_uid: str = "",
                sop_instance_uid: str = "") -> None:
    """Refuse (InstanceRejected) what the gateway must not acknowledge; see the module docstring."""
    meta, offset = _meta_group(file_bytes)
    for tag, asked, name in ((0x00020002, sop_class_uid, "SOP Class UID"),
                             (0x00020003, sop_instance_uid, "SOP Instance UID"),
                             (0x00020010, transfer_syntax_uid, "Transfer Syntax UID")):
        if asked and meta.get(tag, asked) != asked:
            raise _bad(f"file meta {name} {meta.get(tag)} does not match the request ({asked})",
                       STATUS_SOP_CLASS_MISMATCH)
    buf = _dataset_of(file_bytes, offset, transfer_syntax_uid)
    walk = _Walk(buf, implicit=transfer_syntax_uid == IMPLICIT_VR_LITTLE_ENDIAN,
                 big=transfer_syntax_uid == EXPLICIT_VR_BIG_ENDIAN)
    try:
        walk.dataset(offset, len(buf), 0, top=True)
    except struct.error as exc:
        raise _bad(f"element header cut short: {exc}", STATUS_TRUNCATED) from exc
    found = walk.found
    sop_class = _text(found, _SOP_CLASS) or meta.get(0x00020002, "")
    for tag, asked, name in ((_SOP_CLASS, sop_class_uid or meta.get(0x00020002, ""), "SOP Class UID"),
                             (_SOP_INSTANCE, sop_instance_uid or meta.get(0x00020003, ""), "SOP Instance UID")):
        if asked and _text(found, tag) and _text(found, tag) != asked:
            raise _bad(f"dataset {name} {_text(found, tag)} does not match the request and file meta ({asked})",
                       STATUS_SOP_CLASS_MISMATCH)
    modality = _text(found, _MODALITY).upper()
    allowed = MODALITIES.get(sop_class)
    if allowed is not None and modality and modality not in allowed:
        raise _bad(f"Modality {modality} is not allowed by SOP class {sop_class} ({', '.join(sorted(allowed))})",
                   STATUS_SOP_CLASS_MISMATCH)
    for tag, name in ((_PATIENT_NAME, "PatientName"), (_PATIENT_ID, "PatientID"), (_ACCESSION, "AccessionNumber")):
        if b"\x00" in found.get(tag, (b"", b""))[0].rstrip(b" "):
            raise _bad(f"{name} contains a NUL byte", STATUS_VALUE_OUT_OF_RANGE)
    _is(_text(found, _INSTANCE_NUMBER), "InstanceNumber")
    _is(_text(found, _SERIES_NUMBER), "SeriesNumber")
    _pixels_check(walk, transfer_syntax_uid)


def _pixels_check(walk: _Walk, transfer_syntax_uid: str) -> None:
    found = walk.found
    rows, cols = _us(walk, _ROWS, "Rows"), _us(walk, _COLUMNS, "Columns")
    samples, bits = _us(walk, _SAMPLES, "SamplesPerPixel"), _us(walk, _BITS, "BitsAllocated")
    stored, representation = _us(walk, _STORED, "BitsStored"), _us(walk, _REPRESENTATION, "PixelRepresentation")
    assert rows is not None and cols is not None and samples is not None and bits is not None
    assert stored is not None
    if not rows or not cols:
        raise _bad(f"image of {rows} x {cols} pixels", STATUS_SOP_CLASS_MISMATCH)
    photometric = _text(found, _PHOTOMETRIC).upper()
    if photometric not in PHOTOMETRIC:
        raise _bad(f"PhotometricInterpretation {photometric or 'missing'} is not an image's",
                   STATUS_SOP_CLASS_MISMATCH)
    if samples != PHOTOMETRIC[photometric]:
        raise _bad(f"SamplesPerPixel {samples} with {photometric}", STATUS_SOP_CLASS_MISMATCH)
    pixels = walk.pixels
    float_bits = {FLOAT_PIXEL: (32,), DOUBLE_PIXEL: (64,)}.get(pixels.tag if pixels else PIXEL, (1, 8, 16, 32))
    if bits not in float_bits:
        raise _bad(f"BitsAllocated {bits} is not one of {', '.join(map(str, float_bits))}", STATUS_SOP_CLASS_MISMATCH)
    if not 1 <= stored <= bits:
        raise _bad(f"BitsStored {stored} with BitsAllocated {bits}", STATUS_SOP_CLASS_MISMATCH)
    if representation not in (0, 1):
        raise _bad(f"PixelRepresentation {representation}", STATUS_SOP_CLASS_MISMATCH)
    if samples > 1 and _us(walk, _PLANAR, "PlanarConfiguration") not in (0, 1):
        raise _bad("PlanarConfiguration must be 0 or 1", STATUS_SOP_CLASS_MISMATCH)
    frames_text = _text(found, _FRAMES)
    frames = 1
    if frames_text:
        try:
            frames = int(frames_text)
        except ValueError:
            raise _bad(f"NumberOfFrames {frames_text!r} is not a number", STATUS_SOP_CLASS_MISMATCH) from None
        if frames < 1:
            raise _bad(f"NumberOfFrames {frames}", STATUS_SOP_CLASS_MISMATCH)
    if pixels is None:
        raise _bad("no pixel data (truncated?)", STATUS_TRUNCATED)
    native = transfer_syntax_uid in NATIVE_TRANSFER_SYNTAXES
    if pixels.length == UNDEFINED:
        if native:
            raise _bad("encapsulated pixel data in a native transfer syntax")
        _codec_check(walk.first_fragment, transfer_syntax_uid)
        return
    if not native:
        raise _bad(f"native pixel data declared with the compressed transfer syntax {transfer_syntax_uid}")
    expected = (rows * cols * frames * samples * bits + 7) // 8
    if pixels.length != expected and pixels.length != expected + (expected % 2):
        status = STATUS_TRUNCATED if pixels.length < expected else STATUS_CANNOT_PARSE
        raise _bad(f"pixel data of {pixels.length} bytes, {expected} expected ({rows} x {cols} x {frames} frames "
                   f"x {samples} samples x {bits} bits)", status)


_JPEG = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                   "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})
_J2K = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201",
                  "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"})
RLE = "1.2.840.10008.1.2.5"


def _codec_check(first: bytes, transfer_syntax_uid: str) -> None:
    """The first frame starts as its transfer syntax's codec says (its marker or header; nothing is decoded)."""
    if transfer_syntax_uid in _JPEG:
        ok = first[:2] == b"\xff\xd8"
    elif transfer_syntax_uid in _J2K:
        ok = first[:4] == b"\xff\x4f\xff\x51" or first[:8] == b"\x00\x00\x00\x0cjP  "
    elif transfer_syntax_uid == RLE:
        segments = struct.unpack_from("<I", first)[0] if len(first) >= 64 else 0
        ok = 1 <= segments <= 15 and struct.unpack_from("<I", first, 4)[0] == 64
    else:
        return  # a syntax we do not know the look of
    if not ok:
        raise _bad(f"the first frame is not encoded as the transfer syntax {transfer_syntax_uid} says")
