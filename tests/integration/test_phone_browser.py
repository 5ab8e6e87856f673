"""The emergency physician's pages on a 390 px phone, in real headless Chromium: the requests list is a column
of cards whose first line is the state, the header stays compact, and a refused request form puts the focus on
its error summary (page.js, no inline script: the Content-Security-Policy allows none)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection

from tests.support.browser import browser_login
from tests.support.processes import free_port, manage_cmd, running, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
    pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")), reason="needs chromium"),
]


def _phone(tmp_path: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={tmp_path / 'chrome-phone'}"):
        opts.add_argument(arg)
    # A phone's CSS viewport (390 x 844, an iPhone 12-15), so that the media queries see 390 px.
    opts.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": 390, "height": 844,
                                                                       "pixelRatio": 3.0}})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(60)
    return driver


def test_the_physician_pages_on_a_phone(live_demo: Any, process_env: dict[str, str], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from tests.factories.worklist import make_case

    case = make_case(live_demo, patient_birth_name="TELEPHONE")
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
            assert driver.find_element(By.CSS_SELECTOR, "header.topbar").size["height"] <= 100

            driver.get(f"{base}/worklist/c/{case.public_id}/")
            status = driver.find_element(By.ID, "status-h")
            request = driver.find_element(By.ID, "req-h")
            assert status.location["y"] < request.location["y"]  # the status before the request

            driver.get(f"{base}/worklist/request/new/")
            driver.find_element(By.ID, "submit-request").click()
            wait_until(lambda: driver.find_elements(By.ID, "form-errors"), timeout=20, message="error summary")
            wait_until(lambda: driver.execute_script("return document.activeElement.id") == "form-errors",
                       timeout=10, message="the summary takes the focus")
        finally:
            driver.quit()
