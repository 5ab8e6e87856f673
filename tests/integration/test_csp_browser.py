"""The Content-Security-Policy in real headless Chromium: the platform's pages and the API documentation work
with it (no inline script left to be blocked), and the browser reports no violation.

Chromium logs every CSP violation to the console ("Refused to execute inline script because it violates the
following Content Security Policy directive…"), so the test reads the console after each page."""

from __future__ import annotations

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


def _browser(tmp_path: Path) -> Any:
    return chromium(tmp_path / "chrome-csp", "--window-size=1366,1800", console_log=True)


def _violations(driver: Any) -> list[str]:
    # Redoc asks Google Fonts for its typefaces and its CDN for the "powered by" logo: refused on purpose (no
    # third-party origin), Redoc falls back to the system fonts and shows no logo.
    third_party = ("https://fonts.googleapis.com", "https://cdn.redoc.ly")
    return [e["message"] for e in driver.get_log("browser")
            if "Content Security Policy" in e["message"] and not any(t in e["message"] for t in third_party)]


def test_pages_and_api_docs_work_under_the_policy(live_demo: Any, process_env: dict[str, str], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.factories.worklist import make_case

    case = make_case(live_demo, assign_to="radiologue", status="awaiting_reading")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(manage_cmd("runserver", "--noreload", f"127.0.0.1:{port}"), process_env, tmp_path / "web.log",
                 ready=lambda: requests.get(f"{base}/accounts/login/", timeout=5).status_code == 200, timeout=60):
        driver = _browser(tmp_path)
        try:
            driver.get(f"{base}/accounts/login/")
            assert "Content-Security-Policy" in requests.get(f"{base}/accounts/login/", timeout=10).headers
            assert _violations(driver) == []

            # Radiologist: the worklist's filters submit themselves (formerly an inline onchange handler).
            browser_login(driver, base, "radiologue")
            driver.get(f"{base}/worklist/")
            Select(driver.find_element(By.ID, "f-modality")).select_by_value("CT")
            wait_until(lambda: "modality=CT" in driver.current_url, timeout=15, message="filter submitted by page.js")
            driver.get(f"{base}/worklist/c/{case.public_id}/")
            wait_until(lambda: driver.find_elements(By.TAG_NAME, "h1"), timeout=15, message="case page")
            assert _violations(driver) == []

            # Physician: the request form's submit-once behaviour (formerly an inline script).
            browser_login(driver, base, "urgentiste")
            driver.get(f"{base}/worklist/request/new/")
            assert driver.find_element(By.ID, "request-form").get_attribute("data-submit-once") is not None
            assert _violations(driver) == []

            # API documentation: Swagger UI (its inline start-up script allowed by hash) and Redoc render.
            driver.get(f"{base}/api/docs/")
            wait_until(lambda: "PDS Platform API" in driver.find_element(By.TAG_NAME, "body").text, timeout=30,
                       message="Swagger UI rendered the schema")
            assert driver.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock")
            assert _violations(driver) == []
            driver.get(f"{base}/api/redoc/")
            wait_until(lambda: "PDS Platform API" in driver.find_element(By.TAG_NAME, "body").text, timeout=30,
                       message="Redoc rendered the schema")
            assert _violations(driver) == []
            driver.save_screenshot(str(tmp_path / "redoc.png"))
        finally:
            driver.quit()
