"""Timeline sentences are stored in English and read in the reader's language (apps.worklist.timeline)."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation

from apps.worklist.timeline import SENTENCES, event_text, timeline_match


@pytest.mark.parametrize(("stored", "french"), [
    ("CT CT head without contrast requested (Vital emergency)",
     "Demande CT CT head without contrast (Urgence vitale)"),
    ("Assigned to Dr Anne Martin (Ligne Sud) for reading; acknowledge within 5 min",
     "Attribué à Dr Anne Martin (Ligne Sud) pour lecture\u00a0; accusé de réception attendu sous 5 min"),
    ("Images complete: 1 series, 40 images", "Examen complet\u00a0: 1 série(s), 40 image(s)"),
    ("Report signed by Dr Anne Martin (critical finding)",
     "Compte rendu signé par Dr Anne Martin (résultat critique)"),
    ("Released", "Libéré"),
    ("Handed off to Dr B: fin de garde", "Transmis à Dr B\u00a0: fin de garde"),
    ("Critical finding call to Dr C (not acknowledged)",
     "Appel pour résultat critique à Dr C (réception non confirmée)"),
])
def test_a_stored_sentence_reads_in_french(stored: str, french: str) -> None:
    with translation.override("fr"):
        assert event_text(stored) == french
    with translation.override("en"):
        assert event_text(stored) == stored


def test_a_sentence_no_pattern_knows_is_shown_as_stored() -> None:
    with translation.override("fr"):
        assert event_text("Dr A: patient transféré") == "Dr A: patient transféré"
        assert event_text("") == ""


def test_every_sentence_has_its_french_and_matches_its_own_english() -> None:
    for sentence in SENTENCES:
        sample = sentence.msgid % {name: f"<{name}>" for name in sentence.pattern.groupindex}
        matched = timeline_match(sample)
        assert matched is not None and matched[0] == sentence, sentence.msgid  # no earlier pattern shadows it
        with translation.override("fr"):
            assert event_text(sample) != sample, f"no French for {sentence.msgid!r}"


def test_the_case_page_shows_the_timeline_in_french(demo: Any, login: Any, settings: Any) -> None:
    from tests.factories.worklist import make_case

    settings.LANGUAGE_CODE = "fr"
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    case.events.create(at=case.requested_at, kind="images_complete", message="Images complete: 2 series, 80 images")
    html = login("urgentiste").get(f"/worklist/c/{case.public_id}/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Examen complet\u00a0: 2 série(s), 80 image(s)" in html and "Images complete:" not in html
