"""Accessibility: axe-core (vendored, tests/support/vendor/axe.min.js) on the main pages of each role of the demo,
in real headless Chromium under the platform's Content-Security-Policy. No serious or critical violation."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection
from django.utils import timezone

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


def _series_for(case: Any) -> None:
    """A study row with one series for the viewer (the slices themselves need not exist for the page's markup)."""
    from pydicom.uid import generate_uid

    from apps.studies.models import Instance, Series, Study

    study = Study.objects.create(study_uid=generate_uid(), site=case.site, case=case, modality="CT", num_series=1,
                                 num_instances=1, status="complete")
    series = Series.objects.create(study=study, series_uid=generate_uid(), number=1, modality="CT",
                                   description="Axial", num_instances=1)
    Instance.objects.create(series=series, study=study, sop_instance_uid=generate_uid(),
                            sop_class_uid="1.2.840.10008.5.1.4.1.1.2", instance_number=1, path="missing/1.dcm",
                            size=1, sha256="0" * 64, received_at=timezone.now())


def test_main_pages_of_each_role_have_no_serious_axe_violation(live_demo: Any, process_env: dict[str, str],
                                                               tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from tests.factories.worklist import make_case

    case = make_case(live_demo, assign_to="radiologue", status="awaiting_reading")
    _series_for(case)
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
