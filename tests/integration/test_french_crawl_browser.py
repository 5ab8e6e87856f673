"""Each demo role's pages in real headless Chromium with a French browser, at desktop width and on a 390 px
phone: no English word of a maintained list in the visible text. With ``PDS_SCREENSHOT_DIR`` set (e.g.
docs/screenshots), a screenshot of every page at both widths is written there (the README shows them)."""

from __future__ import annotations

import os
import re
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

# English a French user must not read: whole words, case-sensitive, in the page's visible text. Words that are
# also French ("Site", "Conclusion", "Technique", "Images", "Note", "Urgent", "Zoom"...) are not listed; add a word when one slips in.
ENGLISH = ("Request", "Requests", "Requested", "requested", "Status", "Search", "Submit", "Assigned", "assigned",
           "pending", "Pending", "None", "True", "False", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Monday",
           "Sunday", "night", "Night", "Open", "Claim", "Release", "Sign", "Signed", "Save", "Cancel", "Delete",
           "Waiting", "waiting", "Report", "report", "Worklist", "Dashboard", "Coverage", "Calendar", "Shift",
           "Shifts", "Line", "Week", "Month", "Today", "today", "tonight", "Tonight", "Acknowledge", "Decline",
           "Findings", "Patient name", "Sex", "Female", "Male", "Unknown", "Urgency", "Vital",
           "Deferred", "Log out", "Login", "Password", "Username", "Next", "Previous", "previous", "next",
           "week", "month", "Turnaround", "median_min", "Load", "Risks", "Activity", "Actors", "From", "To",
           "Gap", "GAP", "Uncovered", "covered", "Primary", "Backup", "Role", "Phone", "Until", "Reason", "Assign",
           "Recorded", "Astreinte interventions", "Back home", "Left home", "series",
           "Series", "Viewer", "Window", "Reset", "Loading", "Error", "error", "Warning", "Yes", "No",
           "and", "the", "of", "for", "with", "by")
ENGLISH_RE = re.compile(r"(?<![\w'’-])(" + "|".join(re.escape(w) for w in ENGLISH) + r")(?![\w'’-])")



def _cases(demo: Any) -> dict[str, Any]:
    from apps.worklist.services import case_claim, report_draft_save, report_sign
    from tests.factories.worklist import make_case, make_viewer_series

    waiting = make_case(demo, patient_birth_name="ATTENTE", patient_sex="M")
    reading = make_case(demo, assign_to="radiologue", status="awaiting_reading", patient_birth_name="LECTURE")
    make_viewer_series(reading)
    signed = make_case(demo, assign_to="radiologue", status="awaiting_reading", patient_birth_name="SIGNE",
                       patient_used_name="MOREAU", patient_sex="F", exam="Scanner cérébral sans injection")
    radiologist = demo.users["radiologue"]
    case_claim(case_id=signed.pk, user=radiologist)
    report_draft_save(case_id=signed.pk, user=radiologist, fields={
        "indication": "Chute sous anticoagulant.", "technique": "Acquisition hélicoïdale sans injection.",
        "findings": "Pas de collection hémorragique intra- ou extra-axiale.",
        "conclusion": "Pas d'hémorragie intracrânienne."})
    report_sign(case_id=signed.pk, user=radiologist)
    return {"waiting": waiting, "reading": reading, "signed": signed}


def _pages(cases: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """(screenshot name, path) of each role's main pages."""
    c = {k: v.public_id for k, v in cases.items()}
    return {
        "coordinateur": [("dashboard", "/dashboard/"), ("coverage", "/rosters/coverage/"),
                         ("calendar-week", "/rosters/calendar/"), ("calendar-month", "/rosters/calendar/?view=month"),
                         ("console", "/routing/console/"), ("requests", "/worklist/site/"),
                         ("admin", "/admin/"), ("admin-shifts", "/admin/rosters/shift/"),
                         ("admin-interventions", "/admin/rosters/intervention/"),
                         ("notifications", "/routing/notifications/")],
        "urgentiste": [("requests", "/worklist/site/"), ("request-form", "/worklist/request/new/"),
                       ("case-waiting", f"/worklist/c/{c['waiting']}/"),
                       ("case-signed", f"/worklist/c/{c['signed']}/"),
                       ("tele-act-record", f"/traceability/cases/{c['signed']}/record/"),
                       ("notifications", "/routing/notifications/")],
        "radiologue": [("worklist", "/worklist/"), ("case", f"/worklist/c/{c['reading']}/"),
                       ("viewer", f"/worklist/c/{c['reading']}/viewer/"),
                       ("case-signed", f"/worklist/c/{c['signed']}/"), ("interventions", "/rosters/interventions/")],
    }


def _driver(tmp_path: Path, phone: bool) -> Any:
    def french(opts: Any) -> None:
        opts.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})
        if phone:
            opts.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": 390, "height": 844,
                                                                               "pixelRatio": 2.0}})

    size = () if phone else ("--window-size=1366,900",)
    return chromium(tmp_path / ("chrome-phone" if phone else "chrome-desktop"), "--lang=fr", *size, options=french)


def _shot(driver: Any, name: str, phone: bool) -> None:
    target = os.environ.get("PDS_SCREENSHOT_DIR")
    if not target:
        return
    Path(target).mkdir(parents=True, exist_ok=True)
    if not phone:  # the whole page, up to 2,400 px
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1366, min(max(height + 150, 900), 2400))  # + the window's own bars
    driver.save_screenshot(str(Path(target) / f"{name}.png"))
    if not phone:
        driver.set_window_size(1366, 900)


def test_each_role_reads_its_pages_in_french_at_desktop_and_phone_width(live_demo: Any, process_env: dict[str, str],
                                                                        tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    pages = _pages(_cases(live_demo))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    found: list[str] = []
    with running(manage_cmd("runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"), process_env,
                 tmp_path / "web.log", ready=lambda: requests.get(f"{base}/accounts/login/", timeout=5).status_code
                 == 200, timeout=60):
        for phone in (False, True):
            driver = _driver(tmp_path, phone)
            width = "phone" if phone else "desktop"
            try:
                driver.get(f"{base}/accounts/login/")
                found += [f"{width} login: {w}" for w in ENGLISH_RE.findall(
                    driver.find_element(By.TAG_NAME, "body").text)]
                _shot(driver, f"login-{width}", phone)
                for username, role_pages in pages.items():
                    browser_login(driver, base, username)
                    for name, path in role_pages:
                        driver.get(base + path)
                        wait_until(lambda d=driver: d.find_elements(By.CSS_SELECTOR, "main, #content"), timeout=20,
                                   message=path)
                        assert driver.execute_script("return document.documentElement.lang") == "fr", path
                        text = driver.find_element(By.TAG_NAME, "body").text
                        words = sorted(set(ENGLISH_RE.findall(text)))
                        if words:
                            found.append(f"{width} {username} {path}: {', '.join(words)}")
                        _shot(driver, f"{username}-{name}-{width}", phone)
            finally:
                driver.quit()
    assert not found, "English on French pages:\n" + "\n".join(found)
