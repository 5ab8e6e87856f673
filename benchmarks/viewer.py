#!/usr/bin/env python
"""Viewer benchmark (issue 19, not a test): a 300-slice 512x512 CT read in OHIF in headless Chromium, from our
DICOMweb and from Orthanc's DICOMweb plugin (Debian ``orthanc-dicomweb``) serving the same files, side by side in
one run, rounds alternated; plus WADO-RS study retrieve throughput from each.

- Ours: the production configuration (``DJANGO_DEBUG=0``, a fresh PostgreSQL database ``<db>_bench_viewer``, the
  Redis of ``REDIS_URL``), gunicorn as ``run_platform`` starts it (``pds_platform.gunicorn_conf``); OHIF under
  /ohif/ from Django, the images from /dicomweb/; the radiologist logged in with password and TOTP code.
- Orthanc: its defaults plus the DICOMweb plugin; the *same* OHIF build (the files of ``var/ohif``, the index page
  as we serve it, our app-config with Orthanc's /dicom-web/ as the root) served by Orthanc's ServeFolders plugin
  at /ohif/ on Orthanc's own port: same origin, no proxy in front of either.
- The same Chromium, the same profile (OHIF's code cached by a warm-up load of each side), a new page per round.

Figures, per round then median. The viewer opened on the first case: first image (a non-blank viewport canvas,
polled every 10 ms by a script the browser runs before the page's own), counted from the navigation and from the
viewer's first DICOMweb request (the code load excluded); series loaded: the last byte of the last of the slices'
frame requests (Resource Timing, buffer enlarged), counted from the navigation. Then the next case, as a night
goes on: the viewer window already open moves to a study nobody opened yet (a new one per round, so neither
server has read its files' metadata before); first image (a canvas that was not on the page before) and series
loaded, counted from the reader's action (ours asks the case's viewer URL as the worklist's "Read" does).
WADO-RS: the whole study, ``transfer-syntax=*``, MB/s of body. Targets: first image under 1 s (the next case in
the open viewer), series loaded no slower than Orthanc's. The last line is ONE name=value summary.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/x REDIS_URL=redis://127.0.0.1:6379/2 \
       .venv/bin/python benchmarks/viewer.py [--slices 300] [--rounds 3] [--syntax jpeg-lossless|explicit-le]
(needs chromium, chromedriver, dcmtk, orthanc and orthanc-dicomweb: ``scripts/ensure_system_deps.sh --bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _common  # noqa: E402

ORTHANC_PLUGINS = Path("/usr/share/orthanc/plugins")
# Runs in the page before its own scripts (DevTools, so our Content-Security-Policy does not apply): a larger
# Resource Timing buffer (default 250 entries) and the time the first non-blank viewport canvas is seen.
PROBE = """
performance.setResourceTimingBufferSize(100000);
window.__firstImage = null;
(function poll() {
  if (window.__firstImage === null) {
    for (const c of document.querySelectorAll('canvas.cornerstone-canvas')) {
      if (c.width < 64 || c.height < 64) continue;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let drawn = false;
      for (let i = 4; i < d.length; i += 4 * 97) { if (d[i] !== d[0]) { drawn = true; break; } }
      if (drawn) { window.__firstImage = performance.now(); break; }
    }
  }
  if (window.__firstImage === null) setTimeout(poll, 10);
})();
"""
STATE = """
const all = performance.getEntriesByType('resource');
const web = all.filter(e => e.name.includes(arguments[0]));
const frames = web.filter(e => e.name.includes('/frames/'));
const done = new Set(frames.filter(e => e.responseEnd > 0).map(e => e.name.split('/frames/')[0]));
return {first: window.__firstImage, firstWeb: web.length ? Math.min(...web.map(e => e.startTime)) : null,
        slices: done.size, lastFrame: frames.length ? Math.max(...frames.map(e => e.responseEnd)) : null,
        frameBytes: frames.reduce((a, e) => a + (e.encodedBodySize || 0), 0), requests: frames.length};
"""

# The next case read in the viewer window already open (static/worklist/app.js, apps/worklist/ohif.py _FOLLOW_JS):
# the clock starts, ours asks the case's viewer URL as the worklist does (Orthanc's is known: no request), the URL is
# posted to the window, OHIF moves there; the first image is the first non-blank canvas that was not on the page
# before the move.
SWITCH = """
const [caseUrl, viewerUrl] = arguments;
for (const c of document.querySelectorAll('canvas')) c.__before = true;
window.__switchAt = performance.now(); window.__followFirst = null;
(function poll() {
  for (const c of document.querySelectorAll('canvas.cornerstone-canvas')) {
    if (c.__before || c.width < 64 || c.height < 64) continue;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 4; i < d.length; i += 4 * 97) {
      if (d[i] !== d[0]) { window.__followFirst = performance.now() - window.__switchAt; return; }
    }
  }
  setTimeout(poll, 10);
})();
const go = url => window.postMessage({pdsViewer: url}, location.origin);
if (caseUrl) {
  fetch(caseUrl, {headers: {Accept: 'application/json'}, credentials: 'same-origin'}).then(r => r.json())
    .then(d => go(d.url));
} else { go(viewerUrl); }
"""
FOLLOW_STATE = """
const t0 = window.__switchAt;
const web = performance.getEntriesByType('resource').filter(e => e.name.includes(arguments[0]) && e.startTime >= t0);
const frames = web.filter(e => e.name.includes('/frames/'));
const done = new Set(frames.filter(e => e.responseEnd > 0).map(e => e.name.split('/frames/')[0]));
return {first: window.__followFirst, firstWeb: web.length ? Math.min(...web.map(e => e.startTime)) - t0 : null,
        slices: done.size, lastFrame: frames.length ? Math.max(...frames.map(e => e.responseEnd)) - t0 : null};
"""


@dataclass
class Side:
    name: str
    base: str  # origin
    dicomweb: str  # path of the DICOMweb root
    cookie: str = ""
    rounds: list[dict[str, float]] = field(default_factory=list)
    follows: list[dict[str, float]] = field(default_factory=list)
    mbps: list[float] = field(default_factory=list)


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "pds_platform.settings"
    import django

    django.setup()


def make_studies(work: Path, slices: int, syntax: str, count: int = 2) -> tuple[list[tuple[str, str]], Any, Path]:
    """``count`` cases, each with its study (another patient's, head phantom, 512x512), compressed as asked, in our
    database and store: (study UID, case id) each; the radiologist's TOTP device."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from apps.regions.demo import demo_region_load
    from apps.studies.models import Study
    from apps.worklist.dicom_json import study_metadata_prepare
    from tests.factories.dicom import store_study
    from tests.factories.worklist import make_case

    demo = demo_region_load()
    root = Path(os.environ["PDS_DICOM_STORAGE_ROOT"])
    started = time.perf_counter()
    uids = []
    for n in range(count):
        case = make_case(demo, assign_to="radiologue", status="in_progress")
        study = store_study(root, demo.establishments["vierzon"], case=case, series=1, slices=slices, rows=512,
                            cols=512, phantom=True, jpeg_lossless=syntax == "jpeg-lossless",
                            patient=f"PATIENT^{n + 1}", patient_id=f"PAT-{n + 1}")
        uids.append((study.study_uid, str(case.public_id)))  # type: ignore[attr-defined]
    size = sum(p.stat().st_size for p in root.rglob("*.dcm"))
    print(f"studies: {count} x {slices} slices 512x512 {syntax}, {size / 1e6:.1f} MB, written in "
          f"{time.perf_counter() - started:.0f} s")
    # What a worker does when the radiologist's worklist shows the case, seconds before the "Read" click
    # (apps.worklist.dicom_json): the study's DICOM JSON in the shared cache. Orthanc indexes each file as it
    # receives it (the upload below).
    prepared = []
    for study in Study.objects.filter(study_uid__in=[u for u, _ in uids]):
        begun = time.perf_counter()
        study_metadata_prepare(study_id=study.pk)
        prepared.append((time.perf_counter() - begun) * 1000)
    print(f"metadata prepared by the worker's task: {median(prepared):.0f} ms per study (median)")
    TOTPDevice.objects.filter(user=demo.users["radiologue"]).delete()
    device = TOTPDevice.objects.create(user=demo.users["radiologue"], name="bench", confirmed=True)
    return uids, device, root


def start_gunicorn(env: dict[str, str], work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _common.free_port()
    proc = subprocess.Popen([_common.PY, "-m", "gunicorn", "-c", "python:pds_platform.gunicorn_conf", "--bind",
                             f"127.0.0.1:{port}", "pds_platform.wsgi:application"], cwd=_common.ROOT, env=env,
                            stdout=open(work / "gunicorn.log", "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/accounts/login/", proc, work / "gunicorn.log")
    return proc, port


def start_orthanc(work: Path, files: Path, ohif_index: bytes, ohif_config: str) -> tuple[subprocess.Popen[bytes], int]:
    """Orthanc with the DICOMweb and ServeFolders plugins, the study uploaded through its REST API."""
    from apps.worklist import ohif_release
    from apps.worklist.ohif import ohif_folder

    folder = work / "orthanc-ohif"
    folder.mkdir()
    for item in ohif_folder().iterdir():
        if item.name not in ("index.html", "app-config.js", ohif_release.MARKER):
            (folder / item.name).symlink_to(item)
    (folder / "viewer").write_bytes(ohif_index)  # the viewer's route, served as our index page
    (folder / "app-config.js").write_text(ohif_config)
    port = _common.free_port()
    config = {
        "Name": "bench", "StorageDirectory": str(work / "orthanc-db"), "IndexDirectory": str(work / "orthanc-db"),
        "HttpPort": port, "DicomPort": _common.free_port(), "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [str(ORTHANC_PLUGINS / "libOrthancDicomWeb.so"), str(ORTHANC_PLUGINS / "libServeFolders.so")],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "ServeFolders": {"AllowCache": True, "Folders": {"/ohif": str(folder)},
                         "Extensions": {"": "text/html", ".wasm": "application/wasm", ".mjs": "text/javascript"}},
    }
    (work / "orthanc.json").write_text(json.dumps(config))
    proc = subprocess.Popen(["Orthanc", str(work / "orthanc.json")], stdout=open(work / "orthanc.log", "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/system", proc, work / "orthanc.log")
    with requests.Session() as http:
        for path in sorted(files.rglob("*.dcm")):
            http.post(f"http://127.0.0.1:{port}/instances", data=path.read_bytes(), timeout=60).raise_for_status()
    return proc, port


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=5).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not answering after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def login(driver: Any, base: str, device: Any) -> str:
    """Password then the authenticator's code, in the browser, as a radiologist does; the session cookie."""
    from django_otp.oath import totp
    from selenium.webdriver.common.by import By

    from tests.support.browser import DEMO_PASSWORD
    from tests.support.processes import wait_until

    driver.get(f"{base}/accounts/login/")
    driver.find_element(By.ID, "id_username").send_keys("radiologue")
    driver.find_element(By.ID, "id_password").send_keys(DEMO_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit].primary").click()
    wait_until(lambda: driver.find_elements(By.NAME, "token"), timeout=30, message="the second factor's page")
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"
    driver.find_element(By.NAME, "token").send_keys(code)
    driver.find_element(By.XPATH, "//input[@name='token']/ancestor::form//button[@type='submit']").click()
    wait_until(lambda: "/accounts/login" not in driver.current_url, timeout=30, message="second factor passed")
    return "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())


def read_once(driver: Any, side: Side, study_uid: str, slices: int, timeout: float = 300) -> dict[str, float]:
    """One reading: a new page on the viewer URL; first image and the whole series' frames, in ms."""
    driver.get("about:blank")
    driver.get(f"{side.base}/ohif/viewer?StudyInstanceUIDs={study_uid}")
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = driver.execute_script(STATE, side.dicomweb)
        if state["first"] is not None and state["slices"] >= slices:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"{side.name}: {state} after {timeout:.0f} s")
    return {"first_ms": state["first"], "first_from_request_ms": state["first"] - state["firstWeb"],
            "series_ms": state["lastFrame"], "frame_mb": state["frameBytes"] / 1e6, "requests": state["requests"]}


def follow_once(driver: Any, side: Side, study_uid: str, case_id: str, slices: int,
                timeout: float = 300) -> dict[str, float]:
    """The next case in the viewer window left open by ``read_once``: first image and whole series, in ms from
    the reader's action."""
    from apps.worklist.ohif import ohif_study_url

    case_url = f"/worklist/c/{case_id}/ohif/" if side.name == "ours" else None
    driver.execute_script(SWITCH, case_url, ohif_study_url([study_uid]))
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = driver.execute_script(FOLLOW_STATE, study_uid)
        if state["first"] is not None and state["slices"] >= slices:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"{side.name}: following to the next case, {state} after {timeout:.0f} s")
    if study_uid not in driver.current_url:
        raise RuntimeError(f"{side.name}: the viewer is on {driver.current_url}, not the next study")
    return {"first_ms": state["first"], "first_from_request_ms": state["first"] - state["firstWeb"],
            "series_ms": state["lastFrame"]}


def wado_mbps(side: Side, study_uid: str) -> float:
    """The whole study by WADO-RS (instances as stored), streamed and counted; MB/s of body."""
    headers = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
    if side.cookie:
        headers["Cookie"] = side.cookie
    started = time.perf_counter()
    size = 0
    with requests.get(f"{side.base}{side.dicomweb}/studies/{study_uid}", headers=headers, stream=True,
                      timeout=300) as response:
        response.raise_for_status()
        for chunk in response.iter_content(1 << 20):
            size += len(chunk)
    return size / 1e6 / (time.perf_counter() - started)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--syntax", choices=["jpeg-lossless", "explicit-le"], default="jpeg-lossless")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    for tool in ("chromium", "chromedriver", "Orthanc", "dcmcjpeg"):
        if not shutil.which(tool):
            sys.exit(f"{tool} missing: scripts/ensure_system_deps.sh --bench")
    if not (ORTHANC_PLUGINS / "libOrthancDicomWeb.so").exists():
        sys.exit("orthanc-dicomweb missing: scripts/ensure_system_deps.sh --bench")
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database_url.startswith("postgres") or not redis_url:
        sys.exit("DATABASE_URL (PostgreSQL) and REDIS_URL are needed: the production configuration is measured")
    work = Path(tempfile.mkdtemp(prefix="pds-viewer-bench-"))
    env = _common.production_env(work / "platform", None, database_url=database_url, redis_url=redis_url,
                                 suffix="bench_viewer")
    # Plain HTTP on localhost for both sides (Chromium keeps Secure cookies on localhost): no TLS cost on ours only.
    env.update({"DJANGO_SECURE_SSL_REDIRECT": "0", "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1",
                "PDS_LOG_LEVEL": "WARNING"})
    _common.prepare_production(env)
    django_setup(env)
    from apps.worklist import ohif as ohif_web

    if not ohif_web.ohif_installed():
        sys.exit("OHIF is not installed (make install)")
    # The first case is read cold in each round (OHIF's page loaded); each round then follows to a case nobody
    # has opened yet (its metadata read for the first time on either server), as a night's next case.
    studies, device, files = make_studies(work, args.slices, args.syntax, count=1 + args.rounds)
    study_uid = studies[0][0]
    procs: list[subprocess.Popen[bytes]] = []
    driver = None
    try:
        gunicorn, port = start_gunicorn(env, work)
        procs.append(gunicorn)
        index = ohif_web._index_html(str(ohif_web.ohif_folder().resolve()))
        orthanc, oport = start_orthanc(work, files, index, ohif_web.app_config("/dicom-web"))
        procs.append(orthanc)
        ours = Side("ours", f"http://localhost:{port}", "/dicomweb")
        theirs = Side("orthanc", f"http://localhost:{oport}", "/dicom-web")
        from tests.support.browser import chromium

        driver = chromium(work / "chrome", "--window-size=1400,900", "--enable-unsafe-swiftshader")
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
        ours.cookie = login(driver, ours.base, device)
        for side in (ours, theirs):  # warm-up: OHIF's code in the browser cache, the servers' first requests
            read_once(driver, side, study_uid, args.slices)
        for n in range(args.rounds):
            for side in ((ours, theirs) if n % 2 == 0 else (theirs, ours)):
                load = os.getloadavg()[0]
                side.rounds.append(read_once(driver, side, study_uid, args.slices))
                r = side.rounds[-1]
                print(f"round {n + 1} {side.name:8} opened: first image {r['first_ms']:6.0f} ms "
                      f"({r['first_from_request_ms']:5.0f} ms from the first DICOMweb request), series loaded "
                      f"{r['series_ms']:6.0f} ms ({r['requests']:.0f} frame requests, {r['frame_mb']:.1f} MB), "
                      f"load {load:.1f}")
                side.follows.append(follow_once(driver, side, *studies[n + 1], args.slices))
                f = side.follows[-1]
                side.mbps.append(wado_mbps(side, study_uid))
                print(f"round {n + 1} {side.name:8} next case: first image {f['first_ms']:6.0f} ms "
                      f"({f['first_from_request_ms']:5.0f} ms from the first DICOMweb request), series loaded "
                      f"{f['series_ms']:6.0f} ms; WADO-RS {side.mbps[-1]:6.1f} MB/s")
    finally:
        if driver is not None:
            driver.quit()
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def med(side: Side, key: str) -> float:
        return median([r[key] for r in side.rounds])

    def fmed(side: Side, key: str) -> float:
        return median([r[key] for r in side.follows])

    ratio = med(ours, "series_ms") / med(theirs, "series_ms")
    print(f"\nmedians over {args.rounds} rounds ({args.slices} slices 512x512, {args.syntax}):")
    for side in (ours, theirs):
        print(f"  {side.name:8} first image {med(side, 'first_ms'):.0f} ms "
              f"({med(side, 'first_from_request_ms'):.0f} ms after the viewer's first request), series loaded "
              f"{med(side, 'series_ms'):.0f} ms, WADO-RS {median(side.mbps):.1f} MB/s")
        print(f"  {side.name:8} next case in the open viewer: first image {fmed(side, 'first_ms'):.0f} ms "
              f"({fmed(side, 'first_from_request_ms'):.0f} ms after its first request), series loaded "
              f"{fmed(side, 'series_ms'):.0f} ms")
    first_met, series_met = fmed(ours, "first_ms") < 1000, ratio <= 1.0
    met = first_met and series_met
    print(f"target first image under 1 s (the next case in the open viewer, from the reader's click): "
          f"{'met' if first_met else 'NOT met'} ({fmed(ours, 'first_ms'):.0f} ms; the viewer's first opening, "
          f"its code started: {med(ours, 'first_ms'):.0f} ms); target series loaded no slower than Orthanc's: "
          f"{'met' if series_met else 'NOT met'} ({ratio:.2f})")
    print(f"viewer_slices={args.slices} syntax={args.syntax} ohif_first_image_ms={med(ours, 'first_ms'):.0f} "
          f"orthanc_first_image_ms={med(theirs, 'first_ms'):.0f} "
          f"ohif_first_image_from_request_ms={med(ours, 'first_from_request_ms'):.0f} "
          f"orthanc_first_image_from_request_ms={med(theirs, 'first_from_request_ms'):.0f} "
          f"series_loaded_ms={med(ours, 'series_ms'):.0f} orthanc_series_loaded_ms={med(theirs, 'series_ms'):.0f} "
          f"series_ratio_vs_orthanc={ratio:.2f} next_case_first_image_ms={fmed(ours, 'first_ms'):.0f} "
          f"orthanc_next_case_first_image_ms={fmed(theirs, 'first_ms'):.0f} "
          f"next_case_series_loaded_ms={fmed(ours, 'series_ms'):.0f} "
          f"orthanc_next_case_series_loaded_ms={fmed(theirs, 'series_ms'):.0f} wado_mbps={median(ours.mbps):.1f} "
          f"orthanc_wado_mbps={median(theirs.mbps):.1f}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
