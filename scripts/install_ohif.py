#!/usr/bin/env python3
"""Installs the pinned prebuilt OHIF viewer (``@ohif/app`` from the npm registry) under var/ohif/<version>.

Run by ``make install``. Never fails the build: without npm or the registry it says so and exits 0; the platform
then offers its server-rendered viewer (the case page says so). Idempotent: an installed release is kept.
``PDS_OHIF_ROOT`` overrides the folder (default ``var/ohif`` in the checkout)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE))
from apps.worklist import ohif_release as release  # noqa: E402  (no Django: a plain module)


def log(msg: str) -> None:
    print(f"ohif: {msg}", flush=True)


def integrity(path: Path) -> str:
    digest = hashlib.sha512()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def patch_public_path(folder: Path) -> int:
    """webpack's public path "/" -> PREFIX in every bundle (main and workers: chunks, workers, wasm), and in the
    style sheets' absolute URLs."""
    wanted = f'__webpack_require__.p = "{release.PREFIX}";'.encode()
    patched = 0
    for js in folder.glob("*.js"):
        data = js.read_bytes()
        if release.PUBLIC_PATH_ORIGINAL in data:
            js.write_bytes(data.replace(release.PUBLIC_PATH_ORIGINAL, wanted))
            patched += 1
    for css in folder.glob("*.css"):  # fonts: url(/a34f….woff2)
        data = css.read_bytes()
        css.write_bytes(data.replace(b"url(/", f"url({release.PREFIX}".encode()))
    return patched


def extract(tarball: Path, target: Path) -> None:
    with tarfile.open(tarball, "r:gz") as tar:
        members = []
        for m in tar.getmembers():
            if not m.name.startswith("package/dist/") or not (m.isfile() or m.isdir()):
                continue
            rel = m.name[len("package/dist/"):]
            if not rel or rel.startswith(release.SKIPPED) or ".." in Path(rel).parts:
                continue
            m.name = rel
            members.append(m)
        tar.extractall(target, members=members, filter="data")


def main() -> int:
    root = Path(os.environ.get("PDS_OHIF_ROOT") or BASE / "var" / "ohif")
    target = root / release.VERSION
    if (target / release.MARKER).exists():
        return 0
    npm = shutil.which("npm")
    if npm is None:
        log("npm not found: OHIF not installed, the server-rendered viewer stays in use.")
        return 0
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        spec = f"{release.PACKAGE}@{release.VERSION}"
        log(f"fetching {spec} from the npm registry...")
        try:
            done = subprocess.run([npm, "pack", spec, "--pack-destination", tmp, "--silent"], cwd=tmp,
                                  capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            log("the npm registry did not answer in time: OHIF not installed, server-rendered viewer in use.")
            return 0
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            log(f"npm pack failed ({done.stderr.strip()[-300:]}): OHIF not installed, server-rendered viewer in use.")
            return 0
        got = integrity(tarballs[0])
        if got != release.INTEGRITY:
            log(f"integrity mismatch ({got}): refused; server-rendered viewer in use.")
            return 1
        staging = Path(tmp) / "dist"
        extract(tarballs[0], staging)
        patched = patch_public_path(staging)
        if patched == 0:
            log("no webpack public path found to rewrite: refused; server-rendered viewer in use.")
            return 1
        compressed = release.precompress(staging)
        (staging / release.MARKER).write_text(f"{spec} {release.INTEGRITY} prefix={release.PREFIX}\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    log(f"{spec} installed in {target} ({patched} bundles served under {release.PREFIX}, {compressed} files "
        "compressed).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
