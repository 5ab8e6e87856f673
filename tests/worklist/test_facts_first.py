"""Each user sees the facts they need first: worklist rows that tell cases apart (patient, age, sex, exam, site,
request time, waiting time against the target), "Acknowledge" at the top of the case page, tonight's signed
cases (the way in to an addendum), the critical-call form pre-filled, status text that follows the state, the
PDF's header facts, and the phone layout's hooks."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from apps.worklist.models import Case, Report
from apps.worklist.pdf import report_facts
from apps.worklist.presentation import age_label, sla_level
from apps.worklist.selectors import night_start
from tests.factories.worklist import make_case

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("urgency", "minutes", "level"), [
    ("vital", 0, "ok"), ("vital", 29, "ok"), ("vital", 30, "warn"), ("vital", 59, "warn"), ("vital", 60, "late"),
    ("urgent", 89, "ok"), ("urgent", 90, "warn"), ("urgent", 180, "late"), ("deferred", 700, "warn"),
    ("deferred", 720, "late"),
])
def test_waiting_time_against_the_regional_target(urgency: str, minutes: int, level: str) -> None:
    assert sla_level(urgency, dt.timedelta(minutes=minutes)) == level


def test_age_is_in_years_or_in_months_for_a_small_child() -> None:
    assert age_label(dt.date(1950, 3, 14), dt.date(2026, 12, 1)) == "76 years"
    assert age_label(dt.date(2025, 11, 15), dt.date(2026, 12, 1)) == "12 months"
    assert age_label(dt.date(2026, 11, 20), dt.date(2026, 12, 1)) == "0 months"


def test_tonight_begins_at_the_noon_before_the_night() -> None:
    paris = timezone.get_current_timezone()
    assert night_start(dt.datetime(2026, 12, 1, 3, 0, tzinfo=paris)) == dt.datetime(2026, 11, 30, 12, 0, tzinfo=paris)
    assert night_start(dt.datetime(2026, 12, 1, 20, 0, tzinfo=paris)) == dt.datetime(2026, 12, 1, 12, 0, tzinfo=paris)


def test_worklist_rows_tell_three_cases_apart(demo: Any, login: Any) -> None:
    names = ("ALPHA", "BRAVO", "CHARLIE")
    cases = [make_case(demo, assign_to="radiologue", status="awaiting_reading", patient_birth_name=n,
                       patient_sex=sex, patient_birth_date=dt.date(1950 + 10 * i, 3, 14))
             for i, (n, sex) in enumerate(zip(names, "MFU", strict=True))]
    Case.objects.filter(pk=cases[0].pk).update(requested_at=timezone.now() - dt.timedelta(minutes=75))
    html = login("radiologue").get("/worklist/").content.decode()
    rows = {c.patient_birth_name: re.search(rf'<tr class="\w+" data-case="{c.public_id}">.*?</tr>', html, re.S)
            for c in cases}
    today = timezone.localdate()
    for i, c in enumerate(cases):
        row = rows[c.patient_birth_name]
        assert row is not None
        text = row.group(0)
        assert c.patient_birth_name in text and age_label(c.patient_birth_date, today) in text
        assert ("Male", "Female", "Unknown")[i] in text and "CH de Vierzon" in text and c.exam in text
        assert timezone.localtime(Case.objects.get(pk=c.pk).requested_at).strftime("%H:%M") in text
    assert 'data-sla="late"' in rows["ALPHA"].group(0) and "beyond the target" in rows["ALPHA"].group(0)
    assert 'data-sla="ok"' in rows["BRAVO"].group(0)


def test_the_site_list_shows_age_sex_and_the_waiting_colour_as_cards_on_a_phone(demo: Any, login: Any) -> None:
    case = make_case(demo, patient_sex="F", patient_birth_date=dt.date(1990, 1, 1))
    html = login("urgentiste").get("/worklist/site/").content.decode()
    row = re.search(rf'<tr class="\w+" data-case="{case.public_id}">.*?</tr>', html, re.S)
    assert row is not None and "Female" in row.group(0) and 'data-sla="ok"' in row.group(0)
    assert '<table class="cards"' in html and 'class="col-state"' in row.group(0)
    assert 'data-label="State"' in row.group(0) and 'data-label="Waiting"' in row.group(0)
    css = (Path(settings.BASE_DIR) / "static" / "css" / "app.css").read_text()
    assert "@media (max-width: 600px)" in css and "table.cards td.col-state { order:-2; }" in css


def test_acknowledge_is_the_first_action_on_the_case_page(demo: Any, login: Any) -> None:
    case = make_case(demo, assign_to="radiologue")  # awaiting validation: the validation form is on the page
    html = login("radiologue").get(f"/worklist/c/{case.public_id}/").content.decode()
    assert html.count('id="ack-button"') == 1
    assert html.index('id="ack-button"') < html.index("<h2")  # before the request and the validation form
    assert 'id="validate-form"' in html


def _claimed(demo: Any, login: Any) -> tuple[Case, Any, str]:
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading", accession_number="ACC-77")
    radio = login("radiologue")
    base = f"/worklist/c/{case.public_id}"
    assert radio.post(f"{base}/do/claim").status_code == 302
    return case, radio, base


def test_the_critical_call_form_has_the_department_phone_and_the_time(demo: Any, login: Any) -> None:
    case, radio, base = _claimed(demo, login)
    html = radio.get(f"{base}/").content.decode()
    phone = demo.establishments["vierzon"].phone_24h
    assert phone and f'href="tel:{phone.replace(" ", "")}"' in html
    value = re.search(r'id="call-at" value="([^"]+)"', html)
    assert value is not None
    called = dt.datetime.strptime(value.group(1), "%Y-%m-%dT%H:%M")
    assert abs(called - timezone.localtime().replace(tzinfo=None)) < dt.timedelta(minutes=2)


def test_after_signing_the_status_says_read_and_the_case_is_signed_tonight(demo: Any, login: Any) -> None:
    case, radio, base = _claimed(demo, login)
    phys = login("urgentiste")
    assert "Being read by" in phys.get(f"{base}/").content.decode()
    radio.post(f"{base}/do/sign", {"indication": "Chute", "technique": "TDM", "findings": "Normal.",
                                   "conclusion": "Pas d'hémorragie."})
    page = phys.get(f"{base}/").content.decode()
    assert "Being read by" not in page and "Read by" in page and "Report signed" in page
    worklist = radio.get("/worklist/").content.decode()
    signed = re.search(r'<section class="card" aria-labelledby="signed-h" id="signed-tonight">.*?</section>',
                       worklist, re.S)
    assert signed is not None and f'href="/worklist/c/{case.public_id}/"' in signed.group(0)
    assert case.patient_birth_name in signed.group(0)
    # The addendum form is one click away, on the case page.
    assert f'action="/worklist/c/{case.public_id}/do/addendum"' in radio.get(f"{base}/").content.decode()
    # A case signed two days ago is not tonight's.
    Case.objects.filter(pk=case.pk).update(signed_at=timezone.now() - dt.timedelta(days=2))
    assert f'data-case="{case.public_id}"' not in radio.get("/worklist/").content.decode()


def test_the_pdf_header_names_the_establishment_exam_patient_and_physicians(demo: Any, login: Any) -> None:
    case, radio, base = _claimed(demo, login)
    radio.post(f"{base}/do/sign", {"indication": "Chute", "technique": "TDM", "findings": "Normal.",
                                   "conclusion": "Pas d'hémorragie."})
    report = Report.objects.select_related("case__site", "case__requested_by", "signed_by").get(case=case)
    facts = report_facts(report)
    site = demo.establishments["vierzon"]
    assert facts["establishment"][0] == site.name and f"FINESS {site.finess}" in facts["establishment"][1]
    exam_at = timezone.localtime(case.images_complete_at or case.requested_at)
    assert "Accession number: ACC-77" in facts["exam"][1] and f"{exam_at:%d/%m/%Y}" in facts["exam"][1]
    assert "Sex: Male" in facts["patient"][1] and f"Age: {age_label(case.patient_birth_date, exam_at.date())}" \
        in facts["patient"][1]
    physician, radiologist = demo.users["urgentiste"], demo.users["radiologue"]
    assert physician.rpps and f"RPPS {physician.rpps}" in facts["physicians"][0]
    assert radiologist.rpps and f"RPPS {radiologist.rpps}" in facts["physicians"][1]
    pdf = login("urgentiste").get(f"{base}/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
