"""The emergency physician's pages on a 390 px phone, in real headless Chromium: the requests list is a column
of cards whose first line is the state, the header stays compact, and a refused request form puts the focus on
its error summary (page.js, no inline script: the Content-Security-Policy allows none)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection

from tests.support.browser import browser_login, chromium
from tests.support.processes import free_port, manage_cmd, running, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
    pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")), reason="needs chromium"),
]


def _phone(tmp_path: Path) -> Any:
    def french_phone(opts: Any) -> None:
        opts.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})  # a French phone
        # A phone's CSS viewport (390 x 844, an iPhone 12-15), so that the media queries see 390 px.
        opts.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": 390, "height": 844,
                                                                           "pixelRatio": 3.0}})

    return chromium(tmp_path / "chrome-phone", "--lang=fr", options=french_phone)


def _shot(driver: Any, tmp_path: Path, name: str) -> None:
    """A screenshot, also copied to $PDS_SCREENSHOT_DIR (docs/screenshots/) when set."""
    driver.save_screenshot(str(tmp_path / f"{name}.png"))
    target = os.environ.get("PDS_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / f"{name}.png", Path(target) / f"{name}.png")


def test_the_physician_pages_on_a_phone(live_demo: Any, process_env: dict[str, str], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from apps.worklist.services import case_claim, report_draft_save, report_sign
    from tests.factories.worklist import make_case

    case = make_case(live_demo, patient_birth_name="TELEPHONE")
    read = make_case(live_demo, assign_to="radiologue", status="awaiting_reading", patient_birth_name="LECTURE",
                     patient_used_name="MOREAU", patient_sex="F", exam="Scanner cérébral sans injection")
    radiologist = live_demo.users["radiologue"]
    case_claim(case_id=read.pk, user=radiologist)
    report_draft_save(case_id=read.pk, user=radiologist, fields={
        "indication": "Chute sous anticoagulant.", "technique": "Acquisition hélicoïdale sans injection.",
        "findings": "Pas de collection hémorragique intra- ou extra-axiale. Pas d'effet de masse.",
        "conclusion": "Pas d'hémorragie intracrânienne."})
    report_sign(case_id=read.pk, user=radiologist)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(manage_cmd("runserver", "--noreload", f"127.0.0.1:{port}"), process_env, tmp_path / "web.log",
                 ready=lambda: requests.get(f"{base}/accounts/login/", timeout=5).status_code == 200, timeout=60):
        driver = _phone(tmp_path)
        try:
            browser_login(driver, base, "urgentiste")
            driver.get(f"{base}/worklist/site/")
            row = driver.find_element(By.CSS_SELECTOR, f"tr[data-case='{case.public_id}']")
            assert driver.execute_script("return window.innerWidth") == 390
            assert driver.execute_script("return document.documentElement.scrollWidth") <= 390  # no sideways scroll
            state = row.find_element(By.CSS_SELECTOR, "td.col-state")
            patient = row.find_element(By.CSS_SELECTOR, "td.patient")
            waiting = row.find_element(By.CSS_SELECTOR, "td.col-waiting")
            assert state.is_displayed() and waiting.is_displayed()
            assert state.location["y"] < waiting.location["y"] < patient.location["y"]
            _shot(driver, tmp_path, "phone-site-requests")
            assert driver.find_element(By.CSS_SELECTOR, "header.topbar").size["height"] <= 100  # was 160

            driver.get(f"{base}/worklist/c/{case.public_id}/")
            status = driver.find_element(By.ID, "status-h")
            request = driver.find_element(By.ID, "req-h")
            assert status.location["y"] < request.location["y"]  # the status before the request

            driver.get(f"{base}/worklist/c/{read.public_id}/")
            conclusion = driver.find_element(By.ID, "report-conclusion")
            findings = driver.find_element(By.XPATH, "//section[@id='report']//h3[3]")
            assert conclusion.location["y"] < findings.location["y"]  # the conclusion first
            assert conclusion.location["y"] < driver.find_element(By.ID, "req-h").location["y"]
            _shot(driver, tmp_path, "phone-case-status")

            driver.get(f"{base}/worklist/request/new/")
            driver.find_element(By.ID, "submit-request").click()
            wait_until(lambda: driver.find_elements(By.ID, "form-errors"), timeout=20, message="error summary")
            wait_until(lambda: driver.execute_script("return document.activeElement.id") == "form-errors",
                       timeout=10, message="the summary takes the focus")
            _shot(driver, tmp_path, "phone-request-errors")
        finally:
            driver.quit()
