"""The ARS dashboard in real headless Chromium against ``manage.py runserver``: the charts are drawn by
the vendored Chart.js (no network beyond our server), without console errors; the establishment
administrator gets the read-only, scoped page. A screenshot goes to the test's temporary directory and to
``$PDS_SCREENSHOT_DIR`` when set (docs/screenshots/dashboard.png is refreshed that way)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection
from django.utils import timezone

from tests.support.browser import browser_login, chromium
from tests.support.processes import free_port, manage_cmd, running, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
    pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")), reason="needs chromium"),
]

PASSWORD = "pds-demo-2026"


def _activity(demo: Any) -> None:
    from apps.dashboards.models import RiskAction, RiskEntry
    from apps.worklist.models import Case

    now = timezone.now()
    m = dt.timedelta(minutes=1)
    for i, (key, modality, urgency) in enumerate([("vierzon", "CT", "vital"), ("vierzon", "CT", "urgent"),
                                                  ("vierzon", "US", "deferred"), ("blois", "CT", "urgent"),
                                                  ("blois", "MR", "deferred"), ("vierzon", "XR", "urgent")]):
        req = now - dt.timedelta(days=i * 3 + 1, hours=i * 5)
        signed = modality != "US"
        Case.objects.create(site=demo.establishments[key], modality_id=modality, urgency=urgency, requested_at=req,
                            patient_birth_name="TEST", patient_first_names="Browser", patient_sex="U",
                            patient_birth_date=dt.date(1970, 1, 1), clinical_question="?", exam=modality,
                            validated_at=req + 10 * m if signed else None,
                            images_complete_at=req + 30 * m if signed else None,
                            assigned_at=req + 35 * m if signed else None,
                            acknowledged_at=req + 40 * m if signed else None,
                            signed_at=req + (70 + 10 * i) * m if signed else None,
                            status="reported" if signed else "redirected")
    risk = RiskEntry.objects.create(region=demo.region, risk="Saturation des radiologues", nature="human", impact=4,
                                    probability=3, last_review=now.date() - dt.timedelta(days=200))
    RiskAction.objects.create(risk=risk, action="Renfort de la ligne mutualisée", owner="ARS",
                              due_date=now.date() + dt.timedelta(days=30))


def _browser(tmp_path: Path) -> Any:
    return chromium(tmp_path / "chrome-dashboard", "--window-size=1366,2400", "--lang=fr", console_log=True)


def _login(driver: Any, base: str, username: str) -> None:
    browser_login(driver, base, username, PASSWORD)


def _console_errors(driver: Any) -> list[dict[str, Any]]:
    # The browser's own favicon probe is not the page's (base.html declares no icon).
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]


# Counts the non-transparent pixels of a canvas: > 0 once Chart.js has drawn on it.
DRAWN_PIXELS = """
const c = document.getElementById(arguments[0]);
if (!c || !window.pdsCharts || !window.pdsCharts[arguments[0]]) { return 0; }
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let n = 0; for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) { n++; } }
return n;
"""


def test_dashboard_in_chromium(live_demo, process_env, tmp_path):
    from selenium.webdriver.common.by import By

    _activity(live_demo)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(manage_cmd("runserver", "--noreload", f"127.0.0.1:{port}"), process_env, tmp_path / "web.log",
                 ready=lambda: requests.get(f"{base}/accounts/login/", timeout=5).status_code == 200, timeout=60):
        driver = _browser(tmp_path)
        try:
            _login(driver, base, "coordinateur")
            wait_until(lambda: "/dashboard/" in driver.current_url, timeout=30, message="landing on the dashboard")
            for chart in ("chart-sites", "chart-modalities", "chart-substitution", "chart-turnaround", "chart-load"):
                wait_until(lambda c=chart: driver.execute_script(DRAWN_PIXELS, c) > 500, timeout=30,
                           message=f"{chart} drawn")
            sites = driver.find_element(By.ID, "table-activity_sites").text
            assert "Vierzon" in sites and "Blois" in sites
            overdue = driver.find_elements(By.CSS_SELECTOR, "#table-risks_register tr.overdue")
            assert len(overdue) >= 1 and "Saturation" in overdue[0].text
            scripts = [s.get_attribute("src") for s in driver.find_elements(By.TAG_NAME, "script")]
            assert all(src.startswith(base) for src in scripts if src), scripts  # vendored, no CDN
            assert _console_errors(driver) == []
            driver.save_screenshot(str(tmp_path / "dashboard.png"))
            target = os.environ.get("PDS_SCREENSHOT_DIR")
            if target:
                Path(target).mkdir(parents=True, exist_ok=True)
                shutil.copy(tmp_path / "dashboard.png", Path(target) / "dashboard.png")

            # The establishment administrator: read-only, their establishment only.
            _login(driver, base, "admin.vierzon")
            wait_until(lambda: "/dashboard/" in driver.current_url, timeout=30, message="admin on the dashboard")
            wait_until(lambda: driver.execute_script(DRAWN_PIXELS, "chart-sites") > 500, timeout=30,
                       message="admin chart drawn")
            sites = driver.find_element(By.ID, "table-activity_sites").text
            assert "Vierzon" in sites and "Blois" not in sites
            assert "read-only" in driver.find_element(By.TAG_NAME, "h1").text
            assert _console_errors(driver) == []
        finally:
            driver.quit()
