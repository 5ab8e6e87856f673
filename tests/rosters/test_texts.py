"""Roster warnings and CSV import errors read in French (apps.rosters.texts); English stays as stored."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from apps.rosters.texts import roster_text


@pytest.mark.parametrize(("stored", "french"), [
    ("Only 1.5 h of rest after the garde ending 30/11/2026 08:30: 11 hours are required.",
     "Seulement 1,5 h de repos après la garde terminée le 30/11/2026 08:30\u00a0: 11 heures sont requises."),
    ("9 on-calls in 12/2026: the region's limit is 8 per month.",
     "9 gardes ou astreintes en 12/2026\u00a0: la limite de la région est de 8 par mois."),
    ("unknown line 'Ligne X' in this region", "ligne de garde inconnue 'Ligne X' dans cette région"),
    ("Overlaps another shift (01/12/2026 18:30 – 02/12/2026 08:30). 9 on-calls in 12/2026: the region's limit "
     "is 8 per month.",
     "Chevauche un autre créneau (01/12/2026 18:30 – 02/12/2026 08:30). 9 gardes ou astreintes en 12/2026\u00a0: la "
     "limite de la région est de 8 par mois."),
    ("Free text from somewhere.", "Free text from somewhere."),
])
def test_roster_texts_read_in_french(stored: str, french: str) -> None:
    with translation.override("fr"):
        assert roster_text(stored) == french
    with translation.override("en"):
        assert roster_text(stored) == stored


def test_the_csv_import_page_lists_errors_in_french(demo: Any, client: Any, settings: Any) -> None:
    settings.LANGUAGE_CODE = "fr"
    client.force_login(demo.users["coordinateur"])
    content = ("line;radiologist;start;end;kind;role\n"
               "Ligne inconnue;radio.durand1;2027-03-05 18:30;2027-03-06 08:30;garde;primary\n")
    resp = client.post("/admin/rosters/shift/import/", {
        "region": demo.region.pk, "file": SimpleUploadedFile("march.csv", content.encode())},
        HTTP_ACCEPT_LANGUAGE="fr")
    html = resp.content.decode()
    assert resp.status_code == 200 and "ligne de garde inconnue" in html and "unknown line" not in html
