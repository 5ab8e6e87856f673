"""What a French user reads: the pages and texts this module checks are rendered with 'fr' active (the test
settings default to English, tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from apps.core.errors import ApplicationError
from apps.routing.notification_texts import notification_text
from apps.traceability.labels import paris_time, record_display
from apps.worklist import services
from tests.factories.worklist import make_case

pytestmark = pytest.mark.django_db


@pytest.fixture
def french(settings: Any) -> None:
    settings.LANGUAGE_CODE = "fr"


def _client(demo: Any, username: str) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    client.force_login(demo.users[username])
    return client


def test_a_service_refusal_reads_in_french(demo: Any) -> None:
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    with translation.override("fr"), pytest.raises(ApplicationError) as refused:
        services.report_sign(case_id=case.pk, user=demo.users["radiologue"])
    assert refused.value.message == "Prenez en charge le dossier avant d'en rédiger le compte rendu."


def test_the_sms_of_an_assignment_reads_in_french() -> None:
    stored = ("PDS: Vital emergency CT from CH de Vierzon\nCase #12 assigned to you for reading (CT head). "
              "Acknowledge within 5 min.")
    with translation.override("fr"):
        assert notification_text(stored) == (
            "PDS\u00a0: Urgence vitale CT de CH de Vierzon\nDossier n° 12 qui vous est attribué pour lecture "
            "(CT head). Accusez réception sous 5 min.")


def test_the_worklist_offers_to_open_a_case_and_all_modalities(demo: Any, french: None) -> None:
    make_case(demo, assign_to="radiologue", status="awaiting_reading")
    html = _client(demo, "radiologue").get("/worklist/").content.decode()
    assert ">Ouvrir</a>" in html and ">Ouvert</a>" not in html
    assert '<option value="">Toutes</option>' in html


def test_the_dashboard_titles_columns_and_weekdays_are_french(demo: Any, french: None) -> None:
    html = _client(demo, "coordinateur").get("/dashboard/").content.decode()
    for french_text in ("Délais, tous dossiers", "Médiane (min)", "90e percentile dans la cible", "<th>lun</th>",
                        "<th>dim</th>", "Demandes et interprétations par modalité"):
        assert french_text in html, french_text
    for english in ("median_min", "p90_within_target", "Turnaround, all cases", "<th>Mon</th>"):
        assert english not in html, english


def test_the_tele_act_record_shows_labels_and_paris_times(demo: Any, french: None) -> None:
    case = make_case(demo)
    html = _client(demo, "urgentiste").get(f"/traceability/cases/{case.public_id}/record/").content.decode()
    assert "Médecin demandeur" in html and "requesting_physician" not in html
    assert "Interprétation demandée" in html
    assert paris_time(case.requested_at.isoformat()) in html and "+00:00" not in html


def test_record_times_are_paris_local_in_french_format() -> None:
    assert paris_time("2026-11-30T23:30:00+00:00") == "01/12/2026 00:30"  # winter: UTC+1
    assert paris_time("2026-07-01T12:00:00+00:00") == "01/07/2026 14:00"  # summer: UTC+2
    assert paris_time("1980-05-04") == "04/05/1980" and paris_time(None) == ""
    doc = {"acts": [{"act": "request", "label": "Interpretation requested", "at": "2026-11-30T23:30:00+00:00"}],
           "professionals": [{"role": "requesting_physician", "name": "Dr A"}], "incidents": [],
           "consent": {"statement": "No opposition to data sharing recorded."},
           "patient": {"withheld": False, "birth_date": "1980-05-04"}, "report": None}
    with translation.override("fr"):
        shown = record_display(doc)
    assert shown["acts"][0]["label"] == "Interprétation demandée" and shown["acts"][0]["when"] == "01/12/2026 00:30"
    assert shown["professionals"][0]["role_label"] == "Médecin demandeur"
    assert shown["consent"]["statement"] == "Aucune opposition au partage des données n'est consignée."
    assert doc["acts"][0]["at"] == "2026-11-30T23:30:00+00:00"  # the machine record is left as it is


def test_coverage_period_labels_read_in_french() -> None:
    from apps.regions.period_labels import period_label_text

    with translation.override("fr"):
        assert period_label_text("Mon 30/11 night") == "lun 30/11 nuit"
        assert period_label_text("Sat 05/12 afternoon") == "sam 05/12 après-midi"
        assert period_label_text("Sun 06/12 day") == "dim 06/12 jour"
        assert period_label_text("CH de Vierzon") == "CH de Vierzon"


def test_the_coverage_page_headers_are_french(demo: Any, french: None) -> None:
    html = _client(demo, "coordinateur").get("/rosters/coverage/").content.decode()
    assert " nuit</th>" in html and " night</th>" not in html


# English a French user must not read (whole words, in the visible text of the page). Kept short and specific:
# words that are also French ("Conclusion", "Technique", "Site") are not listed.
ENGLISH = ("Request", "Requested", "requested", "Assigned", "acknowledge", "Images complete", "Turnaround",
           "night", "Open", "Claim", "Template", "Findings", "Helical", "Brain parenchyma", "requesting_physician",
           "median_min", "Critical finding", "Sign the report", "Signed", "Released", "Waiting")


def _visible_text(html: str) -> str:
    import re

    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S | re.I)
    return re.sub(r"<[^>]+>", " ", html)


def _english_words(html: str) -> list[str]:
    import re

    text = _visible_text(html)
    return [w for w in ENGLISH if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)]


def test_each_role_reads_its_pages_in_french(demo: Any, french: None) -> None:
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    case.events.create(at=case.requested_at, kind="images_complete", message="Images complete: 1 series, 40 images")
    radiologist = _client(demo, "radiologue")
    assert radiologist.post(f"/worklist/c/{case.public_id}/do/claim").status_code == 302
    pages = {
        "urgentiste": ["/worklist/site/", "/worklist/request/new/", f"/worklist/c/{case.public_id}/",
                       f"/traceability/cases/{case.public_id}/record/"],
        "radiologue": ["/worklist/", f"/worklist/c/{case.public_id}/"],
        "coordinateur": ["/dashboard/", "/rosters/coverage/"],
    }
    found = {}
    for username, urls in pages.items():
        client = radiologist if username == "radiologue" else _client(demo, username)
        for url in urls:
            page = client.get(url)
            assert page.status_code == 200, (username, url, page.status_code)
            words = _english_words(page.content.decode())
            if words:
                found[f"{username} {url}"] = words
    assert not found, found


def test_declining_without_a_reason_is_refused_in_french(demo: Any) -> None:
    from apps.routing.services import assignment_decline

    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    with translation.override("fr"), pytest.raises(ApplicationError) as refused:
        assignment_decline(case_id=case.pk, user=demo.users["radiologue"], reason="")
    assert refused.value.message == "Indiquez pourquoi vous voulez décliner ce dossier."
