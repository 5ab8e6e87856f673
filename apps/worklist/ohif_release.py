"""The OHIF viewer release the platform serves: pinned version, tarball integrity and URL prefix (no Django).

Read by ``scripts/install_ohif.py`` (``make install``, without Django) and by ``apps.worklist.ohif`` (serving).
The prebuilt ``@ohif/app`` ``dist/`` is built for the root path: the installer rewrites webpack's public path to
:data:`PREFIX` in every bundle, and the index page is rewritten when served."""

from __future__ import annotations

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
