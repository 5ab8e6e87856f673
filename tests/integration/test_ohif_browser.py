"""Issue 19, point 2: the OHIF viewer served by the platform, in real headless Chromium.

A radiologist logs in, opens a case's study from the worklist in OHIF (pinned release installed by
``make install``, served under /ohif/ with our app-config); the report editor stays in the first window. The study
is a JPEG Lossless (SV1) CT compressed by dcmtk, as a PACS sends it. What the issue asks a night reader can do:
the study opens, a slice renders (the canvas is not blank), a mouse drag with the default window/level tool
changes the window and the pixels, the mouse wheel reaches the last slice, a Length measurement drawn with the
mouse is listed in the measurement panel, and the MPR layout draws three non-blank planes (a volume rebuilt from
the slices). The browser reports no Content-Security-Policy violation and no failed request."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection

from apps.worklist import ohif_release
from tests.support.browser import browser_login, chromium
from tests.support.processes import free_port, manage_cmd, running, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
    pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")), reason="needs chromium"),
    # Without npm, `make install` cannot fetch OHIF and the platform falls back to its own viewer (tested in
    # tests/worklist/test_ohif.py); with npm, a missing release is a failure, not a skip.
    pytest.mark.skipif(not shutil.which("npm"), reason="no npm on this machine: OHIF is not installed"),
]

SLICES = 20

# A non-blank canvas: some pixel of the viewport's canvas differs from the first one.
CANVAS_DRAWN = """
var canvases = Array.from(document.querySelectorAll('.cornerstone-canvas, canvas'));
for (var c of canvases) {
  if (c.width < 64 || c.height < 64) continue;
  try {
    var ctx = c.getContext('2d');
    if (!ctx) continue;
    var d = ctx.getImageData(0, 0, c.width, c.height).data;
    for (var i = 4; i < d.length; i += 4 * 7) {
      if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) return true;
    }
  } catch (e) {}
}
return false;"""

# Per viewport pane: [drawn (not blank), a hash of a sample of its pixels].
PANES = """
return Array.from(document.querySelectorAll('[data-cy=viewport-pane]')).map(function (pane) {
  var c = pane.querySelector('canvas.cornerstone-canvas');
  if (!c || c.width < 64 || c.height < 64) return [false, 0];
  var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  var drawn = false, h = 0;
  for (var i = 0; i < d.length; i += 4 * 5) {
    if (d[i] !== d[0]) drawn = true;
    h = (h * 31 + d[i]) | 0;
  }
  return [drawn, h];
});"""


def test_radiologist_reads_the_case_study_in_ohif(live_demo: Any, process_env: dict[str, str], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from tests.factories.dicom import store_study
    from tests.factories.worklist import make_case

    assert ohif_release.installed(settings.PDS_OHIF_ROOT), "OHIF not installed: run `make install` (npm present)"
    from apps.worklist.models import Case

    case = make_case(live_demo, assign_to="radiologue", status="in_progress")
    Case.objects.filter(pk=case.pk).update(claimed_by=live_demo.users["radiologue"])  # claimed: the editor shows
    study = store_study(tmp_path / "dicom", live_demo.establishments["vierzon"], case=case, series=1,
                        slices=SLICES, rows=128, cols=128, phantom=True, jpeg_lossless=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(manage_cmd("runserver", "--noreload", f"127.0.0.1:{port}"), process_env,
                 tmp_path / "web.log",
                 ready=lambda: requests.get(f"{base}/accounts/login/", timeout=5).status_code == 200, timeout=60):
        # Anonymous: the viewer's files are behind the login like every page.
        assert requests.get(f"{base}/ohif/app-config.js", timeout=10, allow_redirects=False).status_code == 302
        driver = chromium(tmp_path / "chrome-ohif", "--window-size=1400,900", "--enable-unsafe-swiftshader",
                          console_log=True)
        try:
            browser_login(driver, base, "radiologue")
            driver.get(f"{base}/worklist/")
            link = driver.find_element(By.CSS_SELECTOR, f"tr[data-case='{case.public_id}'] a.ohif-link")
            assert link.get_attribute("target") == "pds-ohif"
            link.click()
            # This window follows to the case page (report editor); OHIF opens in the second window.
            wait_until(lambda: f"/worklist/c/{case.public_id}/" in driver.current_url, timeout=20,
                       message="case page in the first window")
            assert driver.find_elements(By.ID, "report-form")
            wait_until(lambda: len(driver.window_handles) == 2, timeout=20, message="OHIF window opened")
            first = driver.current_window_handle
            driver.switch_to.window([h for h in driver.window_handles if h != first][0])
            wait_until(lambda: "/ohif/viewer" in driver.current_url, timeout=30, message="OHIF route")
            assert study.study_uid in driver.current_url
            try:
                wait_until(lambda: "S:1" in driver.find_element(By.TAG_NAME, "body").text, timeout=90,
                           message="the study's series listed by OHIF")
                wait_until(lambda: driver.execute_script(CANVAS_DRAWN), timeout=90, message="a slice drawn")
                reads_like_a_radiologist(driver)
                follows_the_next_case(driver, base, first, live_demo, tmp_path)
            except Exception as exc:
                console = [e["message"][:400] for e in driver.get_log("browser")]
                body = driver.find_element(By.TAG_NAME, "body").text[:1500]
                driver.save_screenshot(str(tmp_path / "ohif.png"))
                web = (tmp_path / "web.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{exc}\nconsole:\n" + "\n".join(console[-40:]) + f"\nbody:\n{body}\n"
                                     f"web.log:\n{web}\nscreenshot: {tmp_path / 'ohif.png'}") from exc
            logs = [e["message"] for e in driver.get_log("browser")]
            assert [m for m in logs if "Content Security Policy" in m] == []
            assert [m for m in logs if "Failed to load resource" in m] == []  # no file missing, none refused
        finally:
            driver.quit()


def reads_like_a_radiologist(driver: Any) -> None:
    """Window/level, scroll to the last slice, a Length measurement, the MPR layout: with the mouse, as a reader."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By

    def overlay(corner: str) -> str:
        return " ".join(driver.find_element(By.CSS_SELECTOR, f"[data-cy=viewport-overlay-{corner}]").text.split())

    for skip in driver.find_elements(By.XPATH, "//*[normalize-space(text())='Skip all']"):
        skip.click()  # the first-visit tour of the viewer
    pane = driver.find_element(By.CSS_SELECTOR, "[data-cy=viewport-pane]")
    # Window/level: the default tool of the left button; the W/L overlay and the pixels change.
    window = overlay("bottom-left")
    assert window.startswith("W:"), window
    pixels = driver.execute_script(PANES)[0][1]
    ActionChains(driver).move_to_element(pane).click_and_hold().move_by_offset(60, 30).move_by_offset(60, 30) \
        .release().perform()
    wait_until(lambda: overlay("bottom-left") != window, timeout=10, message="window/level changed by the drag")
    wait_until(lambda: driver.execute_script(PANES)[0][1] != pixels, timeout=10, message="pixels changed by W/L")
    # The mouse wheel scrolls the stack to its last slice ("I:<n> (<k>/<N>)" at the bottom right).
    assert f"/{SLICES})" in overlay("bottom-right"), overlay("bottom-right")
    for _ in range(SLICES + 5):
        ActionChains(driver).scroll_from_origin(ScrollOrigin.from_element(pane), 0, 120).perform()
    wait_until(lambda: f"({SLICES}/{SLICES})" in overlay("bottom-right"), timeout=15,
               message=f"the last slice reached by the wheel (overlay {overlay('bottom-right')!r})")
    assert driver.execute_script(PANES)[0][0], "the last slice is drawn"
    # A Length measurement: the tool, a drag, OHIF asks whether to track, the panel lists it in mm.
    driver.find_element(By.CSS_SELECTOR, "[data-cy=Length-btn]").click()
    ActionChains(driver).move_to_element_with_offset(pane, -100, 0).click_and_hold().move_by_offset(80, 40) \
        .move_by_offset(80, 40).release().perform()
    wait_until(lambda: driver.find_elements(By.XPATH, "//button[normalize-space()='Yes']"), timeout=10,
               message="OHIF asks to track the measurement")
    driver.find_element(By.XPATH, "//button[normalize-space()='Yes']").click()
    driver.find_element(By.CSS_SELECTOR, "[data-cy=trackedMeasurements-btn]").click()
    rows = "[data-cy^=measurement-table-row]"
    wait_until(lambda: any(" mm" in r.text for r in driver.find_elements(By.CSS_SELECTOR, rows)), timeout=10,
               message="the length listed in the measurement panel")
    # MPR: the layout menu, "MPR": three viewports, each a non-blank plane of the rebuilt volume.
    driver.find_element(By.CSS_SELECTOR, "[data-cy=layout-button]").click()
    driver.find_element(By.XPATH, "//*[normalize-space(text())='MPR']").click()
    wait_until(lambda: len(driver.execute_script(PANES)) == 3 and all(d for d, _ in driver.execute_script(PANES)),
               timeout=60, message="three MPR planes drawn")
    wait_until(lambda: "/128" in driver.find_element(By.CSS_SELECTOR, "[data-cy=viewport-grid]").text, timeout=10,
               message="the reformatted planes' slice counts (128 rows or columns)")


def follows_the_next_case(driver: Any, base: str, first: str, demo: Any, tmp_path: Path) -> None:
    """The next case read from the worklist: the OHIF window already open is not reloaded (its page, code and
    workers stay) but moves to the new study with OHIF's own router; the first window goes to that case's page.
    The opening is audited as a redirect's is."""
    from selenium.webdriver.common.by import By

    from apps.audit.models import AuditEntry
    from tests.factories.dicom import store_study
    from tests.factories.worklist import make_case

    case = make_case(demo, assign_to="radiologue", status="in_progress")
    study = store_study(tmp_path / "dicom", demo.establishments["vierzon"], case=case, series=1, slices=SLICES,
                        rows=128, cols=128, phantom=True, jpeg_lossless=True, patient="MARTIN^PAUL",
                        patient_id="PAT-2")
    viewer = driver.current_window_handle
    # Marks of this page: a reload or a new document would lose them.
    driver.execute_script("window.__sameDocument = true;"
                          "for (const c of document.querySelectorAll('canvas')) c.__before = true;")
    driver.switch_to.window(first)
    driver.get(f"{base}/worklist/")
    driver.find_element(By.CSS_SELECTOR, f"tr[data-case='{case.public_id}'] a.ohif-link").click()
    wait_until(lambda: f"/worklist/c/{case.public_id}/" in driver.current_url, timeout=20,
               message="the first window follows to the next case's page")
    assert len(driver.window_handles) == 2, "no third window: the viewer's window is reused"
    driver.switch_to.window(viewer)
    wait_until(lambda: study.study_uid in driver.current_url, timeout=30, message="OHIF moved to the next study")
    assert driver.execute_script("return window.__sameDocument === true"), "OHIF was reloaded"
    new_slice = """
    for (const c of document.querySelectorAll('canvas.cornerstone-canvas')) {
      if (c.__before || c.width < 64) continue;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 4; i < d.length; i += 4 * 7) { if (d[i] !== d[0]) return true; }
    }
    return false;"""
    wait_until(lambda: driver.execute_script(new_slice), timeout=60, message="a slice of the next study drawn")
    frames = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)"
                                   ".filter(n => n.includes(arguments[0]) && n.includes('/frames/')).length",
                                   study.study_uid)
    assert frames >= 1, "the next study's frames were fetched"
    opened = AuditEntry.objects.filter(action="read", object_id=str(case.pk), details__view="ohif")
    assert opened.count() == 1 and opened.get().details["studies"] == [study.study_uid]
