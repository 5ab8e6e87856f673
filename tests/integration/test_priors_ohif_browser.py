"""A radiologist compares tonight's study with the prior retrieved from the site PACS, in OHIF in real headless
Chromium: **Read in OHIF** opens both studies with OHIF's compare hanging protocol, the current study and the prior
drawn side by side (two viewports, each with its own images)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.worklist import ohif_release
from tests.integration.test_ohif_browser import CANVAS_DRAWN, PANES
from tests.support.browser import browser_login, chromium
from tests.support.processes import free_port, manage_cmd, running, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
    pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")), reason="needs chromium"),
    pytest.mark.skipif(not shutil.which("npm"), reason="no npm on this machine: OHIF is not installed"),
]


def test_radiologist_compares_with_the_prior_side_by_side(live_demo: Any, process_env: dict[str, str],
                                                          tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from apps.regions.models import DicomNode
    from apps.studies.models import Study, StudyStatus
    from apps.worklist.models import Case
    from apps.worklist.priors.models import PriorQuery, PriorQueryState, PriorState, PriorStudy
    from tests.factories.dicom import store_study
    from tests.factories.worklist import make_case

    assert ohif_release.installed(settings.PDS_OHIF_ROOT), "OHIF not installed: run `make install` (npm present)"
    case = make_case(live_demo, assign_to="radiologue", status="in_progress")
    Case.objects.filter(pk=case.pk).update(claimed_by=live_demo.users["radiologue"])
    site = live_demo.establishments["vierzon"]
    current = store_study(tmp_path / "dicom", site, case=case, slices=8, rows=96, cols=96, phantom=True)
    prior = store_study(tmp_path / "dicom", site, slices=8, rows=96, cols=96)  # other pixels: noise
    Study.objects.filter(pk=prior.pk).update(status=StudyStatus.PRIOR,
                                             study_datetime=timezone.now() - dt.timedelta(days=400))
    PriorStudy.objects.create(case=case, study_uid=prior.study_uid, study=prior, state=PriorState.RETRIEVED,
                              modalities="CT", description="CT head last year", listed_at=timezone.now(),
                              retrieved_at=timezone.now())
    PriorStudy.objects.create(case=case, study_uid="1.2.826.0.1.3680043.10.99", state=PriorState.AVAILABLE,
                              modalities="MR", description="IRM cérébrale", listed_at=timezone.now(),
                              study_datetime=timezone.now() - dt.timedelta(days=800))
    PriorQuery.objects.create(case=case, node=DicomNode.objects.get(ae_title="VIERZON_PACS"),
                              state=PriorQueryState.DONE, requested_at=timezone.now(), finished_at=timezone.now())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(manage_cmd("runserver", "--noreload", f"127.0.0.1:{port}"), process_env, tmp_path / "web.log",
                 ready=lambda: requests.get(f"{base}/accounts/login/", timeout=5).status_code == 200, timeout=60):
        driver = chromium(tmp_path / "chrome-priors", "--window-size=1400,900", "--enable-unsafe-swiftshader",
                          console_log=True)
        try:
            browser_login(driver, base, "radiologue")
            driver.get(f"{base}/worklist/c/{case.public_id}/ohif/")
            wait_until(lambda: "/ohif/viewer" in driver.current_url, timeout=30, message="OHIF route")
            assert current.study_uid in driver.current_url and prior.study_uid in driver.current_url
            try:
                wait_until(lambda: driver.execute_script(CANVAS_DRAWN), timeout=90, message="a slice drawn")
                wait_until(lambda: [p for p in driver.execute_script(PANES) if p[0]].__len__() >= 2, timeout=90,
                           message="two viewports drawn")
                panes = [p for p in driver.execute_script(PANES) if p[0]]
                assert len({h for _drawn, h in panes}) >= 2, panes  # not the same images twice: current | prior
            except Exception as exc:
                console = [e["message"][:400] for e in driver.get_log("browser")]
                driver.save_screenshot(str(tmp_path / "ohif-priors.png"))
                raise AssertionError(f"{exc}\nconsole:\n" + "\n".join(console[-30:])
                                     + f"\nscreenshot: {tmp_path / 'ohif-priors.png'}") from exc
            shots = os.environ.get("PDS_SCREENSHOT_DIR")
            if shots:
                driver.save_screenshot(str(Path(shots) / "radiologue-ohif-prior-desktop.png"))
            # The case page lists the priors with their state, the one not retrieved with its button.
            driver.get(f"{base}/worklist/c/{case.public_id}/")
            section = driver.find_element(By.ID, "priors")
            rows = section.find_elements(By.CSS_SELECTOR, "tr[data-study-uid]")
            assert [r.get_attribute("data-state") for r in rows] == ["retrieved", "available"]
            assert rows[1].find_elements(By.CSS_SELECTOR, "button.prior-retrieve")
            assert not rows[0].find_elements(By.CSS_SELECTOR, "button.prior-retrieve")
            if shots:
                driver.execute_script("arguments[0].scrollIntoView()", section)
                driver.save_screenshot(str(Path(shots) / "radiologue-case-priors-desktop.png"))
        finally:
            driver.quit()
