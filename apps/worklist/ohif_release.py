"""The OHIF viewer release the platform serves: pinned version, tarball integrity and URL prefix (no Django).

Read by ``scripts/install_ohif.py`` (``make install``, without Django) and by ``apps.worklist.ohif`` (serving).
The prebuilt ``@ohif/app`` ``dist/`` is built for the root path: the installer rewrites webpack's public path to
:data:`PREFIX` in every bundle, and the index page is rewritten when served."""

from __future__ import annotations

import gzip
import os
import shutil
import threading
from pathlib import Path

PACKAGE = "@ohif/app"
VERSION = "3.13.2"
# The registry's dist.integrity of that version: npm checks it while packing, the installer checks it again.
INTEGRITY = "sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA=="
# Where the viewer is served (pds_platform/urls.py mounts apps.worklist.ohif_urls there).
PREFIX = "/ohif/"
# Parts of dist/ never loaded by the modes we serve (microscopy, the ONNX runtime of AI segmentation): not
# installed, 156 MB less.
SKIPPED = ("dicom-microscopy-viewer/", "ort/", "sw.js", "init-service-worker.js", "google.js")
# webpack's runtime sets the public path once per bundle (main bundle and workers).
PUBLIC_PATH_ORIGINAL = b'__webpack_require__.p = "/";'
MARKER = ".pds-installed"


def installed(root: str | Path) -> bool:
    """The release is fully installed under ``root`` (the installer writes the marker last)."""
    return (Path(root) / VERSION / MARKER).is_file()


# Served gzip-compressed when the browser accepts it: the main bundle is 17 MB as built (3.4 MB compressed), more
# than Chromium's disk cache keeps for one entry, so it was fetched again at every opening of the viewer.
COMPRESSED_SUFFIXES = (".js", ".css", ".wasm", ".json", ".svg", ".html")
COMPRESS_MIN_BYTES = 1024


def gzipped(path: Path) -> Path | None:
    """``path`` + ``.gz``, written next to it (once, atomically) if missing or older; None if it cannot be written
    (a read-only folder: then served as it is) or is not worth it."""
    if path.suffix not in COMPRESSED_SUFFIXES or path.stat().st_size < COMPRESS_MIN_BYTES:
        return None
    target = path.with_name(path.name + ".gz")
    try:
        if target.stat().st_mtime >= path.stat().st_mtime:
            return target
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.gz.tmp")
    try:
        with open(path, "rb") as src, gzip.GzipFile(tmp, "wb", compresslevel=6, mtime=0) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, target)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
        return None
    return target


def precompress(folder: Path) -> int:
    """Write the ``.gz`` of every file worth it under ``folder`` (at install time); returns how many."""
    return sum(1 for p in sorted(folder.rglob("*")) if p.is_file() and gzipped(p) is not None)
