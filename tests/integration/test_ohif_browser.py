"""Issue 19, point 2: the OHIF viewer served by the platform, in real headless Chromium.

A radiologist logs in, opens a case's study from the worklist in OHIF (pinned release installed by
``make install``, served under /ohif/ with our app-config): the study's series appear, a viewport canvas is drawn
from our /dicomweb/ (not blank), and the browser reports no Content-Security-Policy violation; the report editor
stays in the first window."""

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


def test_radiologist_reads_the_case_study_in_ohif(live_demo: Any, process_env: dict[str, str], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from tests.factories.dicom import store_study
    from tests.factories.worklist import make_case

    assert ohif_release.installed(settings.PDS_OHIF_ROOT), "OHIF not installed: run `make install` (npm present)"
    from apps.worklist.models import Case

    case = make_case(live_demo, assign_to="radiologue", status="in_progress")
    Case.objects.filter(pk=case.pk).update(claimed_by=live_demo.users["radiologue"])  # claimed: the editor shows
    study = store_study(tmp_path / "dicom", live_demo.establishments["vierzon"], case=case, series=2, slices=12,
                        rows=128, cols=128)
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
            console: list[str] = []
            try:
                wait_until(lambda: "S:2" in driver.find_element(By.TAG_NAME, "body").text, timeout=90,
                           message="the study's series listed by OHIF")
                wait_until(lambda: driver.execute_script(CANVAS_DRAWN), timeout=90, message="a slice drawn")
            except AssertionError as exc:
                console = [e["message"][:400] for e in driver.get_log("browser")]
                body = driver.find_element(By.TAG_NAME, "body").text[:1000]
                web = (tmp_path / "web.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{exc}\nconsole:\n" + "\n".join(console[-40:]) + f"\nbody:\n{body}\n"
                                     f"web.log:\n{web}") from exc
            logs = [e["message"] for e in driver.get_log("browser")]
            assert [m for m in logs if "Content Security Policy" in m] == []
            assert [m for m in logs if "Failed to load resource" in m] == []  # no file missing, none refused
        finally:
            driver.quit()
