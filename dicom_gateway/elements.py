"""The element walker: a little-endian dataset's element headers read without pydicom; its plain values."""

from __future__ import annotations

import struct

PIXEL_DATA_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
UNDEFINED_LENGTH = 0xFFFFFFFF

_US = struct.Struct("<H")
_UL = struct.Struct("<I")
_TAG = struct.Struct("<HH")
_ITEM = struct.Struct("<HHI")
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_SHORT_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN",
                        b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"})
_ITEM_TAG, _ITEM_END, _SEQUENCE_END = 0xE000, 0xE00D, 0xE0DD


class NotPlain(Exception):
    """The quick read stops: pydicom reads the file instead."""


def _element(buf: bytes, pos: int, implicit: bool) -> tuple[int, int, int, bytes]:
    """(tag, value offset, value length, VR) of the element at ``pos``; VR is b"" when implicit."""
    if pos + 8 > len(buf):
        raise NotPlain
    group, elem = _TAG.unpack_from(buf, pos)
    tag = group << 16 | elem
    if implicit or group == 0xFFFE:  # items and delimiters have no VR, even in explicit VR
        return tag, pos + 8, _UL.unpack_from(buf, pos + 4)[0], b""
    vr = buf[pos + 4:pos + 6]
    if vr in _LONG_VRS:
        if pos + 12 > len(buf):
            raise NotPlain
        return tag, pos + 12, _UL.unpack_from(buf, pos + 8)[0], vr
    if vr not in _SHORT_VRS:
        raise NotPlain
    return tag, pos + 8, _US.unpack_from(buf, pos + 6)[0], vr


def _skip_undefined(buf: bytes, pos: int, implicit: bool, depth: int) -> int:
    """Past a value of undefined length (a sequence, or encapsulated fragments): its items up to the
    sequence delimiter. Returns the offset after the delimiter."""
    if depth > 16:
        raise NotPlain
    while True:
        if pos + 8 > len(buf):
            raise NotPlain
        group, elem, length = _ITEM.unpack_from(buf, pos)
        pos += 8
        if group != 0xFFFE:
            raise NotPlain
        if elem == _SEQUENCE_END:
            return pos
        if elem != _ITEM_TAG:
            raise NotPlain
        if length != UNDEFINED_LENGTH:
            pos += length
            continue
        while True:  # an item of undefined length: its elements up to the item delimiter
            tag, vpos, vlen, _ = _element(buf, pos, implicit)
            if tag == 0xFFFE0000 | _ITEM_END:
                pos = vpos
                break
            pos = _skip_undefined(buf, vpos, implicit, depth + 1) if vlen == UNDEFINED_LENGTH else vpos + vlen


def walk(buf: bytes, pos: int, implicit: bool,
         wanted: frozenset[int]) -> tuple[dict[int, tuple[bytes, bytes]], int]:
    """The ``wanted`` top-level values (raw bytes and VR) and the offset where the pixel data element starts
    (or the end of the bytes)."""
    found: dict[int, tuple[bytes, bytes]] = {}
    end = len(buf)
    while pos < end:
        tag, vpos, length, vr = _element(buf, pos, implicit)
        if tag in PIXEL_DATA_TAGS:
            return found, pos
        if length == UNDEFINED_LENGTH:
            pos = _skip_undefined(buf, vpos, implicit, 0)
            continue
        if vpos + length > end:
            raise NotPlain
        if tag in wanted:
            found[tag] = (buf[vpos:vpos + length], vr)
        pos = vpos + length
    return found, pos


def uid_text(found: dict[int, tuple[bytes, bytes]], tag: int) -> str:
    """A UI value without its NUL padding (validated by the caller with UID_RE)."""
    value = found.get(tag)
    return value[0].decode("ascii").rstrip("\x00 ").strip(" ") if value is not None else ""


def plain_text(found: dict[int, tuple[bytes, bytes]], tag: int) -> str:
    """A single letters-and-digits value (CS, IS) without its space padding; anything else is not plain."""
    value = found.get(tag)
    if value is None:
        return ""
    text = value[0].decode("ascii").strip(" ")
    if text and not text.lstrip("+-").isalnum():
        raise NotPlain  # several values, NUL padding, decimals, control characters: pydicom decides
    return text


def us_value(found: dict[int, tuple[bytes, bytes]], tag: int) -> int | None:
    value = found.get(tag)
    if value is None:
        return None
    raw, vr = value
    if len(raw) != 2 or vr not in (b"", b"US"):
        raise NotPlain
    return int(_US.unpack(raw)[0])


def is_value(found: dict[int, tuple[bytes, bytes]], tag: int) -> int | None:
    text = plain_text(found, tag)
    if not text:
        return None
    if not text.lstrip("+-").isdigit():
        raise NotPlain
    return int(text)
