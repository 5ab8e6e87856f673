"""Accessibility: axe-core (vendored, tests/support/vendor/axe.min.js) on the main pages of each role of the demo,
in real headless Chromium under the platform's Content-Security-Policy. No serious or critical violation."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection

from tests.support.browser import axe_violations, browser_login, chromium, describe_violations
from tests.support.processes import free_port, manage_cmd, running, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
    pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")), reason="needs chromium"),
]


def _browser(tmp_path: Path) -> Any:
    driver = chromium(tmp_path / "chrome-a11y", "--window-size=1366,900", "--lang=fr")
    driver.set_script_timeout(60)
    return driver



def test_main_pages_of_each_role_have_no_serious_axe_violation(live_demo: Any, process_env: dict[str, str],
                                                               tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from tests.factories.worklist import make_case, make_viewer_series

    case = make_case(live_demo, assign_to="radiologue", status="awaiting_reading")
    make_viewer_series(case)
    pages = {
        "radiologue": ["/worklist/", f"/worklist/c/{case.public_id}/", f"/worklist/c/{case.public_id}/viewer/"],
        "urgentiste": ["/worklist/site/", "/worklist/request/new/", f"/worklist/c/{case.public_id}/"],
        "coordinateur": ["/dashboard/", "/rosters/coverage/", "/rosters/calendar/", "/rosters/calendar/?view=month"],
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    found: list[str] = []
    with running(manage_cmd("runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"), process_env,
                 tmp_path / "web.log", ready=lambda: requests.get(f"{base}/accounts/login/", timeout=5).status_code == 200,
                 timeout=60):
        driver = _browser(tmp_path)
        try:
            driver.get(f"{base}/accounts/login/")
            found += [describe_violations("login", axe_violations(driver))]
            for username, paths in pages.items():
                browser_login(driver, base, username)
                for path in paths:
                    driver.get(base + path)
                    wait_until(lambda: driver.find_elements(By.TAG_NAME, "main"), timeout=15, message=path)
                    found.append(describe_violations(f"{username} {path}", axe_violations(driver)))
        finally:
            driver.quit()
    found = [f for f in found if f]
    assert not found, "\n".join(found)
