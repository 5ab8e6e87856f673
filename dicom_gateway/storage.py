"""Durable, never-overwriting writes of received instances.

Invariant: a file exists under its final name only once its bytes were fsynced; the final name
is created with ``link()`` (fails if the name exists) so that nothing ever replaces a stored
image, then the directory is fsynced so that the name itself survives a crash. Temporary files
live in ``<root>/.incoming`` (same filesystem) and are swept when the gateway starts.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

INCOMING = ".incoming"
QUARANTINE = "quarantine"


@dataclass(frozen=True)
class WrittenFile:
    rel_path: str
    size: int
    sha256: str


def _meta_element(tag_element: int, vr: bytes, value: bytes) -> bytes:
    if vr == b"OB":
        return struct.pack("<HH2sHI", 0x0002, tag_element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, tag_element, vr, len(value)) + value


def uid_bytes(uid: str) -> bytes:
    """A UID value as encoded: ASCII, padded to an even length with a NUL (PS3.5 9.1)."""
    raw = uid.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw


def part10_header(*, sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str) -> bytes:
    """Preamble + 'DICM' + file meta (explicit VR little endian, PS3.10 7.1), encoded directly: this runs
    for every image. Deterministic (no sender AE) so that an identical resend hashes the same."""
    version = PYNETDICOM_IMPLEMENTATION_VERSION.encode("ascii")
    body = b"".join((
        _meta_element(0x0001, b"OB", b"\x00\x01"),
        _meta_element(0x0002, b"UI", uid_bytes(sop_class_uid)),
        _meta_element(0x0003, b"UI", uid_bytes(sop_instance_uid)),
        _meta_element(0x0010, b"UI", uid_bytes(transfer_syntax_uid)),
        _meta_element(0x0012, b"UI", uid_bytes(PYNETDICOM_IMPLEMENTATION_UID)),
        _meta_element(0x0013, b"SH", version + b" " if len(version) % 2 else version),
    ))
    return b"\x00" * 128 + b"DICM" + _meta_element(0x0000, b"UL", struct.pack("<I", len(body))) + body


def free_bytes(root: Path) -> int:
    return shutil.disk_usage(root).free


def has_room(root: Path, *, needed: int, min_free_mb: int) -> bool:
    return free_bytes(root) - needed >= min_free_mb * 1024 * 1024


def sha256_of(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def _fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def incoming_sweep(root: Path) -> int:
    """Remove temporary files left by a crash (called before any association is accepted)."""
    incoming = root / INCOMING
    incoming.mkdir(parents=True, exist_ok=True)
    removed = 0
    for p in incoming.iterdir():
        try:
            p.unlink()
            removed += 1
        except OSError:
            pass
    return removed


# The per-image functions below build paths as strings: pathlib cost ~0.4 ms of CPU per image here.


def temp_write(root: Path, chunks: tuple[bytes, ...], *, tag: str) -> str:
    """First half of a durable write: the bytes under a temporary name, fsynced."""
    tmp = f"{os.fspath(root)}/{INCOMING}/{tag}.{os.getpid()}.{threading.get_ident()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        try:
            for c in chunks:
                view = memoryview(c)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
            os.fdatasync(fd)
        finally:
            os.close(fd)
    except BaseException:
        discard(tmp)
        raise
    return tmp


def discard(tmp: str | Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def publish(root: Path, tmp: str, rel_path: str) -> None:
    """Second half: give the fsynced temporary file its final name without ever replacing an existing
    file (FileExistsError, nothing changed), then fsync the directory so that the name survives a crash."""
    final = f"{os.fspath(root)}/{rel_path}"
    directory = os.path.dirname(final)
    try:
        try:
            os.link(tmp, final)
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
            for d in (os.path.dirname(directory), os.path.dirname(os.path.dirname(directory))):
                _fsync_dir(d)
            os.link(tmp, final)
    finally:
        discard(tmp)
    _fsync_dir(directory)


def durable_write(root: Path, rel_path: str, chunks: tuple[bytes, ...], *, tag: str, sha256: str) -> WrittenFile:
    """Write ``chunks`` under ``root/rel_path``. Raises FileExistsError (nothing written) if the name exists,
    OSError on a disk failure (nothing left under the final name)."""
    tmp = temp_write(root, chunks, tag=tag)
    publish(root, tmp, rel_path)
    return WrittenFile(rel_path=rel_path, size=sum(len(c) for c in chunks), sha256=sha256)


def replace_unacknowledged(root: Path, rel_path: str, chunks: tuple[bytes, ...], *, tag: str, sha256: str) -> WrittenFile:
    """Replace a file that no database row acknowledges (left by a crash between rename and record)."""
    target = root / rel_path
    target.unlink(missing_ok=True)
    return durable_write(root, rel_path, chunks, tag=tag, sha256=sha256)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
