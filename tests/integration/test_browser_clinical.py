"""The clinical web app in real headless Chromium against the real processes: the web server
(``runserver``), the DICOM gateway (``run_gateway``, studies sent with dcmtk ``storescu``) and a Celery
worker running the routing engine. No mock of our own components.

Screenshots go to the test's temporary directory, and also to ``$PDS_SCREENSHOT_DIR`` when it is set
(that is how docs/screenshots/ is refreshed).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection
from django.utils import timezone

from apps.worklist.models import AssignmentState, Case, CaseStatus, Report, ReportStatus
from tests.support.browser import browser_login, chromium
from tests.support.processes import celery_worker_cmd, free_port, manage_cmd, running, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL and Redis"),
    pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")), reason="needs chromium"),
]

PASSWORD = "pds-demo-2026"


@contextmanager
def browser(tmp_path: Path, name: str, size: tuple[int, int] = (1366, 900)) -> Iterator[Any]:
    driver = chromium(tmp_path / ("chrome-" + name), f"--window-size={size[0]},{size[1]}", "--lang=fr")
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: Any, tmp_path: Path, name: str) -> None:
    driver.save_screenshot(str(tmp_path / f"{name}.png"))
    target = os.environ.get("PDS_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / f"{name}.png", Path(target) / f"{name}.png")


def login(driver: Any, base: str, username: str) -> None:
    browser_login(driver, base, username, PASSWORD)


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def present(driver: Any, selector: str) -> bool:
    from selenium.webdriver.common.by import By

    return bool(driver.find_elements(By.CSS_SELECTOR, selector))


def write_phantom_study(directory: Path, *, accession: str, patient_id: str) -> list[Path]:
    """A head-like CT phantom (skull ring, brain, a small hyperdense collection) so the viewer shows something
    a reader recognises: two series, 128x128, real Hounsfield units through rescale intercept -1024."""
    import numpy as np
    from pydicom.uid import generate_uid

    from tests.factories.dicom import make_instance

    directory.mkdir(parents=True, exist_ok=True)
    study_uid = generate_uid()
    yy, xx = np.mgrid[0:128, 0:128]
    files = []
    for number, (description, slices) in enumerate((("Axial", 6), ("Bone", 3)), start=1):
        series_uid = generate_uid()
        for n in range(1, slices + 1):
            r = np.hypot((yy - 64) / 1.15, xx - 64)
            hu = np.full((128, 128), -1000.0)
            hu[r < 52] = 1200  # skull
            hu[r < 47] = 35 + 5 * np.sin(xx[r < 47] / 4.0)  # brain, grey/white texture
            hu[np.hypot(yy - 40, xx - 64) < 6] = 15  # ventricle
            hu[(np.hypot(yy - 60, xx - 100) < 8 + n) & (r < 47)] = 70  # subdural collection
            ds = make_instance(study_uid=study_uid, series_uid=series_uid, number=n, series_number=number,
                               rows=128, cols=128, accession=accession, patient_id=patient_id,
                               patient_name="BROWSER^ALICE", series_description=description)
            ds.BitsStored, ds.HighBit = 16, 15
            ds.PixelData = (hu + 1024).clip(0, 65535).astype(np.uint16).tobytes()
            path = directory / f"s{number}_{n:03d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
    return files


@pytest.fixture
def web(process_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "web.log"

    def up() -> bool:
        return requests.get(f"{base}/accounts/login/", timeout=5).status_code == 200

    with running(manage_cmd("runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"), process_env, log, ready=up, timeout=60):
        yield base


def test_full_journey_request_validate_images_claim_view_sign_report(
        live_demo: Any, process_env: dict[str, str], web: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    from pds_platform.celery import app

    app.control.purge()
    dicom_port = free_port()
    env = {**process_env, "PDS_DICOM_PORT": str(dicom_port), "PDS_DICOM_QUIET_SECONDS": "1",
           "PDS_DICOM_MIN_FREE_MB": "1", "PDS_DICOM_WORKERS": "1"}
    gateway_log, worker_log = tmp_path / "gateway.log", tmp_path / "worker.log"
    with (running(celery_worker_cmd("-n", "journey@%h"), env, worker_log, timeout=60,
                  ready=lambda: "ready." in worker_log.read_text(errors="replace")),
          running(manage_cmd("run_gateway"), env, gateway_log, timeout=60,
                  ready=lambda: subprocess.run(["echoscu", "-aec", "PDS_GATEWAY", "-aet", "VIERZON_CT", "127.0.0.1",
                                                str(dicom_port)], capture_output=True, timeout=10).returncode == 0),
          browser(tmp_path, "physician") as phys, browser(tmp_path, "radiologist") as radio):
        # 1. The emergency physician requests a head CT.
        login(phys, web, "urgentiste")
        assert phys.current_url.endswith("/worklist/site/")
        phys.get(f"{web}/worklist/request/new/")
        for field, value in {"id_patient_birth_name": "BROWSER", "id_patient_first_names": "Alice",
                             "id_local_patient_id": "IPP-E2E", "id_accession_number": "ACC-E2E",
                             "id_exam": "Scanner cérébral sans injection",
                             "id_clinical_question": "Hématome sous-dural ?",
                             "id_clinical_context": "Chute sous anticoagulant"}.items():
            css(phys, f"#{field}").send_keys(value)
        phys.execute_script("document.getElementById('id_patient_birth_date').value = '1948-06-01'")
        Select(css(phys, "#id_patient_sex")).select_by_value("F")
        Select(css(phys, "#id_urgency")).select_by_value("vital")
        Select(css(phys, "#id_modality_code")).select_by_value("CT")
        css(phys, "#id_patient_informed").click()
        phys.execute_script("window.scrollTo(0, 0)")
        shot(phys, tmp_path, "request-form")
        css(phys, "#submit-request").click()
        wait_until(lambda: "/worklist/c/" in phys.current_url, timeout=30, message="status page")
        case = Case.objects.get(accession_number="ACC-E2E")
        assert css(phys, "#case-status").get_attribute("data-status") == CaseStatus.AWAITING_VALIDATION

        # 2. Routing (real worker) offers it to the radiologist on duty for validation.
        wait_until(lambda: Case.objects.filter(pk=case.pk, assignment_state=AssignmentState.OFFERED).exists(),
                   timeout=60, message="case offered for validation")
        case.refresh_from_db()
        reader = case.assigned_to
        login(radio, web, reader.username)
        assert radio.current_url.endswith("/worklist/")
        wait_until(lambda: present(radio, f"tr[data-case='{case.public_id}']"), timeout=20, message="worklist row")
        radio.get(f"{web}/worklist/c/{case.public_id}/")
        css(radio, "#val-protocol").send_keys("Scanner cérébral sans injection, coupes fines")
        css(radio, "#validate-submit").click()
        # The physician's page changes by itself (polling, no reload).
        marker = phys.execute_script("window.__noReload = 1; return window.__noReload")
        wait_until(lambda: css(phys, "#case-status").get_attribute("data-status") == CaseStatus.ACCEPTED,
                   timeout=30, message="physician sees the acceptance")
        assert "coupes fines" in css(phys, "#case-protocol").text
        assert phys.execute_script("return window.__noReload") == marker

        # 3. The radiographer's modality sends the study with storescu; it is matched by accession number.
        files = write_phantom_study(tmp_path / "study", accession="ACC-E2E", patient_id="IPP-E2E")
        sent = subprocess.run(["storescu", "-aec", "PDS_GATEWAY", "-aet", "VIERZON_CT", "127.0.0.1",
                               str(dicom_port), *map(str, files)], capture_output=True, timeout=60)
        assert sent.returncode == 0, sent.stderr.decode()
        wait_until(lambda: Case.objects.filter(pk=case.pk, status=CaseStatus.AWAITING_READING).exists(),
                   timeout=60, message="study matched to the request")
        assert case.studies.get().num_instances == 9
        wait_until(lambda: css(phys, "#case-status").get_attribute("data-status") == CaseStatus.AWAITING_READING,
                   timeout=30, message="physician sees images complete")

        # 4. The radiologist claims, views slices (keyboard scroll, window preset), writes and signs.
        radio.get(f"{web}/worklist/")
        wait_until(lambda: present(radio, f"tr[data-case='{case.public_id}']"), timeout=20, message="row")
        shot(radio, tmp_path, "worklist")
        radio.get(f"{web}/worklist/c/{case.public_id}/")
        css(radio, "#claim-button").click()
        wait_until(lambda: present(radio, "#report-form"), timeout=20, message="report editor")
        css(radio, "#open-viewer").click()
        wait_until(lambda: radio.execute_script(
            "var i=document.getElementById('slice'); return i && i.complete && i.naturalWidth === 128"),
            timeout=30, message="slice rendered")
        first = css(radio, "#slice").get_attribute("data-instance")
        css(radio, "#viewport").send_keys(Keys.ARROW_DOWN)
        wait_until(lambda: css(radio, "#slice").get_attribute("data-instance") != first, timeout=10,
                   message="keyboard scroll")
        css(radio, "button[data-preset='brain']").click()
        wait_until(lambda: "preset=brain" in css(radio, "#slice").get_attribute("src") and radio.execute_script(
            "return document.getElementById('slice').naturalWidth === 128"), timeout=20, message="brain window")
        shot(radio, tmp_path, "viewer")
        radio.get(f"{web}/worklist/c/{case.public_id}/")
        conclusion = css(radio, "#rep-conclusion")
        conclusion.send_keys("Pas d'hémorragie intracrânienne.")
        wait_until(lambda: Report.objects.filter(case=case, conclusion__contains="hémorragie").exists(),
                   timeout=20, message="draft autosaved")
        css(radio, "#sign-button").click()
        wait_until(lambda: Report.objects.filter(case=case, status=ReportStatus.SIGNED).exists(), timeout=20,
                   message="report signed")

        # 5. The physician sees the signed report appear, with the PDF link and the on-duty phone.
        wait_until(lambda: present(phys, "#report-conclusion"), timeout=30, message="report on the status page")
        assert "hémorragie" in css(phys, "#report-conclusion").text
        assert css(phys, "#report-pdf").get_attribute("href").endswith("/report.pdf")
        assert present(phys, "#duty-phone")
        shot(phys, tmp_path, "status-with-report")
        cookies = {c["name"]: c["value"] for c in phys.get_cookies()}
        pdf = requests.get(css(phys, "#report-pdf").get_attribute("href"), cookies=cookies, timeout=30)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
        phys.get(f"{web}/worklist/site/")
        shot(phys, tmp_path, "site-requests")
    case.refresh_from_db()
    assert case.status == CaseStatus.REPORTED
    assert [k for k in case.events.values_list("kind", flat=True) if k in (
        "requested", "validated", "images_complete", "claimed", "opened", "report_signed")] == [
        "requested", "validated", "images_complete", "claimed", "opened", "report_signed"]


def test_concurrent_claim_in_two_browsers_and_access_control(live_demo: Any, web: str, tmp_path: Path) -> None:
    from apps.rosters.models import LineKind, OnCallLine, Shift
    from tests.factories.worklist import make_case

    demo = live_demo
    line = OnCallLine.objects.filter(kind=LineKind.POOLED, served_sites=demo.establishments["vierzon"]).first()
    now = timezone.now()
    for username in ("radiologue", "radio.durand1"):
        Shift.objects.create(line=line, radiologist=demo.users[username], start=now - dt.timedelta(hours=1),
                             end=now + dt.timedelta(hours=10), kind="garde", role="primary")
    case = make_case(demo, status="awaiting_reading", urgency="urgent")
    Case.objects.filter(pk=case.pk).update(assigned_line=line)
    url = f"{web}/worklist/c/{case.public_id}/"
    with browser(tmp_path, "a", size=(1024, 768)) as a, browser(tmp_path, "b", size=(1024, 768)) as b:
        login(a, web, "radiologue")
        login(b, web, "radio.durand1")
        a.get(url)
        b.get(url)
        # Both see the claim button; both click at once.
        a.execute_script("document.getElementById('claim-button').form.submit()")
        b.execute_script("document.getElementById('claim-button').form.submit()")
        wait_until(lambda: present(a, "#case-status") and present(b, "#case-status"), timeout=20,
                   message="both pages back")
        case.refresh_from_db()
        winner, loser = (a, b) if case.claimed_by == demo.users["radiologue"] else (b, a)
        assert case.claimed_by is not None
        assert present(winner, "#report-form") and not present(loser, "#report-form")
        assert present(loser, "#claimed-other")
        assert case.claimed_by.last_name in css(loser, "#claimed-other").text
        shot(loser, tmp_path, "claim-conflict")
        # Access control: a physician of another site guesses the URL and gets 404; no row in their list.
        login(loser, web, "urgentiste.blois")
        loser.get(url)
        assert "Page not found" in loser.page_source or "Not Found" in loser.page_source
        assert "DUPONT" not in loser.page_source
        loser.get(f"{web}/worklist/site/")
        assert str(case.public_id) not in loser.page_source
        # A radiologist cannot open the physician's request form.
        login(loser, web, "radiologue")
        loser.get(f"{web}/worklist/request/new/")
        assert not present(loser, "#request-form")
