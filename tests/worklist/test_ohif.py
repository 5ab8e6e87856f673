"""Issue 19, point 2: the OHIF viewer served under /ohif/ (files, our app-config, the index rewritten for our
Content-Security-Policy), opened from the case; without the release installed, the server-rendered viewer."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from apps.audit.models import AuditEntry
from apps.worklist import ohif_release as release
from tests.factories.dicom import store_study
from tests.factories.worklist import make_case

BASE = Path(__file__).resolve().parents[2]
INDEX = ('<!doctype html><html><head><script>console.time("scriptToView"),window.PUBLIC_URL="/"</script>'
         '<link rel="manifest" href="/manifest.json"><link rel="icon" href="/assets/favicon.ico">'
         '<script rel="preload" as="script" src="/app-config.js"></script>'
         '<script rel="preload" as="script" type="module" src="/init-service-worker.js"></script>'
         '<script>function browserImportFunction(n){return import(n)}window.PUBLIC_URL="/"</script>'
         '<script defer src="/app.bundle.0f6159c501addfe9.js"></script><link href="/app.bundle.css" rel="stylesheet">'
         '</head><body><div id="root"></div></body></html>')


@pytest.fixture
def installed(settings: Any, tmp_path: Path) -> Path:
    """A stand-in release folder, as scripts/install_ohif.py leaves it."""
    settings.PDS_OHIF_ROOT = tmp_path / "ohif"
    folder = tmp_path / "ohif" / release.VERSION
    folder.mkdir(parents=True)
    (folder / "index.html").write_text(INDEX)
    (folder / "app.bundle.0f6159c501addfe9.js").write_text('__webpack_require__.p = "/ohif/";')
    (folder / "34b1e6b1deb5828e.wasm").write_bytes(b"\0asm\1\0\0\0")
    (folder / "es6-shim.min.js").write_text("/* a polyfill */")
    (folder / release.MARKER).write_text("x")
    (tmp_path / "secret.txt").write_text("outside")
    return folder


@pytest.fixture
def not_installed(settings: Any, tmp_path: Path) -> None:
    settings.PDS_OHIF_ROOT = tmp_path / "nothing"


def test_the_viewer_files_are_served_behind_the_login_with_our_config(demo: Any, login: Any, installed: Path,
                                                                       client: Any) -> None:
    assert client.get("/ohif/viewer?StudyInstanceUIDs=1.2.3")["Location"].startswith("/accounts/login/")
    radiologist = login("radiologue")
    page = radiologist.get("/ohif/viewer?StudyInstanceUIDs=1.2.3")
    assert page.status_code == 200
    html = page.content.decode()
    # No inline script left (our CSP refuses them), no service worker, no manifest; links under the prefix.
    assert "<script>" not in html and "init-service-worker" not in html and "manifest" not in html
    assert 'src="/ohif/app-config.js"' in html and 'href="/ohif/assets/favicon.ico"' in html
    assert 'src="/ohif/app.bundle.0f6159c501addfe9.js"' in html
    policy = page["Content-Security-Policy"]
    assert "'wasm-unsafe-eval'" in policy and "'unsafe-eval'" not in policy.replace("'wasm-unsafe-eval'", "")
    assert "worker-src 'self' blob:" in policy and "connect-src 'self'" in policy
    # Our app-config: our DICOMweb, the router under /ohif, no study list of its own.
    config = radiologist.get("/ohif/app-config.js").content.decode()
    assert 'window.PUBLIC_URL = "/ohif/"' in config and '"routerBasename": "/ohif"' in config
    assert 'qidoRoot: origin + "/dicomweb"' in config and '"showStudyList": false' in config
    assert "cloudfront" not in config
    wasm = radiologist.get("/ohif/34b1e6b1deb5828e.wasm")
    assert wasm["Content-Type"] == "application/wasm" and "immutable" in wasm["Cache-Control"]
    assert b"".join(wasm.streaming_content).startswith(b"\0asm")
    # Compressed for a browser that accepts it (the main bundle is 17 MB as built): the same bytes once decoded.
    bundle = "app.bundle.0f6159c501addfe9.js"
    (installed / bundle).write_text('__webpack_require__.p = "/ohif/";' + "/* code */" * 400)
    packed = radiologist.get(f"/ohif/{bundle}", HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert packed["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed["Vary"]
    assert packed["Content-Type"].startswith("text/javascript") and "immutable" in packed["Cache-Control"]
    assert gzip.decompress(b"".join(packed.streaming_content)) == (installed / bundle).read_bytes()
    plain = radiologist.get(f"/ohif/{bundle}")
    assert "Content-Encoding" not in plain and b"".join(plain.streaming_content) == (installed / bundle).read_bytes()
    # The release's other files (polyfills, style sheets) are cached a day; our config and the page every time.
    assert radiologist.get("/ohif/es6-shim.min.js")["Cache-Control"] == "private, max-age=86400"
    assert radiologist.get("/ohif/app-config.js")["Cache-Control"] == "private, no-cache"
    assert page["Cache-Control"] == "private, no-cache"
    # Nothing outside the release folder, no missing file passed off as the index.
    assert radiologist.get("/ohif/../secret.txt").status_code == 404
    assert radiologist.get("/ohif/%2e%2e/secret.txt").status_code == 404
    assert radiologist.get(f"/ohif/{release.MARKER}").status_code == 404
    assert radiologist.get("/ohif/missing.bundle.js").status_code == 404
    # Other pages keep the strict policy.
    assert "wasm-unsafe-eval" not in radiologist.get("/worklist/")["Content-Security-Policy"]
    # The coordinator reads no images, nor the viewer.
    assert login("coordinateur").get("/ohif/app-config.js").status_code == 403


def test_the_case_opens_its_studies_in_ohif_audited(demo: Any, login: Any, installed: Path, settings: Any,
                                                    tmp_path: Path) -> None:
    settings.PDS_DICOM_STORAGE_ROOT = tmp_path / "dicom"
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    study = store_study(tmp_path / "dicom", demo.establishments["vierzon"], case=case)
    radiologist = login("radiologue")
    page = radiologist.get(f"/worklist/c/{case.public_id}/").content.decode()
    assert 'id="open-ohif"' in page and 'target="pds-ohif"' in page and "ohif-missing" not in page
    rows = radiologist.get("/worklist/").content.decode()
    assert f'href="/worklist/c/{case.public_id}/ohif/"' in rows and 'data-follow=' in rows
    before = AuditEntry.objects.filter(action="read", object_id=str(case.pk), patient_data=True).count()
    opened = radiologist.get(f"/worklist/c/{case.public_id}/ohif/")
    assert opened.status_code == 302
    assert opened["Location"] == f"/ohif/viewer?StudyInstanceUIDs={study.study_uid}"  # type: ignore[attr-defined]
    assert AuditEntry.objects.filter(action="read", object_id=str(case.pk), patient_data=True).count() == before + 1
    # Asked in JSON (an open viewer window is moved there, static/worklist/app.js): the same URL, audited the same.
    moved = radiologist.get(f"/worklist/c/{case.public_id}/ohif/", HTTP_ACCEPT="application/json")
    assert moved.status_code == 200 and moved.json() == {"url": opened["Location"], "viewer": True}
    assert AuditEntry.objects.filter(action="read", object_id=str(case.pk), patient_data=True).count() == before + 2
    # Another site's radiologist or physician: not found, in JSON too.
    assert login("urgentiste.blois").get(f"/worklist/c/{case.public_id}/ohif/").status_code == 404
    assert login("urgentiste.blois").get(f"/worklist/c/{case.public_id}/ohif/",
                                         HTTP_ACCEPT="application/json").status_code == 404
    # A case without images yet: its page, not the viewer.
    empty = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    assert radiologist.get(f"/worklist/c/{empty.public_id}/ohif/", HTTP_ACCEPT="application/json").json() == {
        "url": f"/worklist/c/{empty.public_id}/", "viewer": False}


def test_the_viewer_follows_only_messages_of_its_own_origin_naming_the_viewer(demo: Any, login: Any,
                                                                              installed: Path) -> None:
    """The listener app-config.js installs in OHIF's window: it checks the message's origin and that the URL is
    the viewer's, then moves OHIF's router there (tested in Chromium, tests/integration/test_ohif_browser.py)."""
    config = login("radiologue").get("/ohif/app-config.js").content.decode()
    assert "window.pdsViewerFollows = true" in config
    assert "event.origin !== window.location.origin" in config
    assert 'var viewer = "/ohif/viewer"' in config and "url.pathname !== viewer" in config
    assert 'new PopStateEvent("popstate"' in config


def test_without_ohif_the_server_rendered_viewer_remains_and_the_page_says_so(demo: Any, login: Any,
                                                                            not_installed: None, settings: Any,
                                                                            tmp_path: Path) -> None:
    settings.PDS_DICOM_STORAGE_ROOT = tmp_path / "dicom"
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    store_study(tmp_path / "dicom", demo.establishments["vierzon"], case=case)
    radiologist = login("radiologue")
    page = radiologist.get(f"/worklist/c/{case.public_id}/").content.decode()
    assert 'id="ohif-missing"' in page and 'id="open-ohif"' not in page and 'id="open-viewer"' in page
    assert "ohif-link" not in radiologist.get("/worklist/").content.decode()
    assert radiologist.get(f"/worklist/c/{case.public_id}/ohif/")["Location"] == f"/worklist/c/{case.public_id}/viewer/"
    assert radiologist.get("/ohif/viewer").status_code == 404
    from apps.worklist.ohif import ohif_status

    assert "server-rendered viewer" in ohif_status()


def _tarball(path: Path) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {"package/dist/index.html": INDEX.encode(),
                           "package/dist/app.bundle.0f6159c501addfe9.js": b'x;__webpack_require__.p = "/";y',
                           "package/dist/app.bundle.css": b"@font-face{src:url(/a34f9d1faa5f3315.woff2)}",
                           "package/dist/ort/huge.wasm": b"skipped", "package/dist/sw.js": b"skipped",
                           "package/README.md": b"not dist"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_the_installer_rewrites_the_public_path_and_never_fails_without_npm(tmp_path: Path) -> None:
    sys.path.insert(0, str(BASE / "scripts"))
    try:
        import install_ohif
    finally:
        sys.path.pop(0)
    tgz = tmp_path / "app.tgz"
    _tarball(tgz)
    target = tmp_path / "dist"
    install_ohif.extract(tgz, target)
    assert sorted(p.name for p in target.iterdir()) == ["app.bundle.0f6159c501addfe9.js", "app.bundle.css",
                                                        "index.html"]
    assert install_ohif.patch_public_path(target) == 1
    assert (target / "app.bundle.0f6159c501addfe9.js").read_bytes() == b'x;__webpack_require__.p = "/ohif/";y'
    assert b"url(/ohif/a34f9d1faa5f3315.woff2)" in (target / "app.bundle.css").read_bytes()
    assert install_ohif.integrity(tgz).startswith("sha512-")
    assert gzip.decompress(tgz.read_bytes())  # a real gzip tarball was checked
    # No npm on the PATH: a message, exit 0 (make install goes on), nothing installed.
    done = subprocess.run([sys.executable, str(BASE / "scripts" / "install_ohif.py")], capture_output=True,
                          text=True, env={"PATH": str(tmp_path), "PDS_OHIF_ROOT": str(tmp_path / "root")})
    assert done.returncode == 0 and "npm not found" in done.stdout
    assert not (tmp_path / "root").exists()
