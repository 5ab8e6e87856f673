"""Report templates: seeded in French by migration, chosen per exam, edited by the coordinator in the admin."""

from __future__ import annotations

from typing import Any

import pytest

from apps.audit.models import AuditEntry
from apps.worklist.models import ReportTemplate
from apps.worklist.report_templates import report_templates_for_editor, template_for
from tests.factories.worklist import make_case

pytestmark = pytest.mark.django_db


def test_the_six_french_templates_are_seeded_with_the_usual_sections() -> None:
    labels = set(ReportTemplate.objects.values_list("label", flat=True))
    assert {"Scanner cérébral sans injection", "Angioscanner des troncs supra-aortiques (AVC)",
            "Scanner thoraco-abdomino-pelvien", "Angioscanner thoracique (embolie pulmonaire)",
            "Scanner du rachis", "IRM cérébrale (AVC)"} <= labels
    for t in ReportTemplate.objects.all():
        # Technique written out, Résultats as headings to complete; the conclusion is the radiologist's.
        assert t.technique and t.findings.count(":") >= 4 and not t.conclusion, t.key


@pytest.mark.parametrize(("modality", "exam", "key"), [
    ("CT", "CT head without contrast", "ct_head"),
    ("CT", "Scanner cérébral sans injection", "ct_head"),
    ("CT", "Angioscanner des TSA - suspicion d'AVC", "cta_stroke"),
    ("CT", "Angioscanner cervico-encéphalique", "cta_stroke"),
    ("CT", "Angioscanner thoracique, suspicion d'embolie pulmonaire", "ct_chest"),
    ("CT", "Scanner thoraco-abdomino-pelvien injecté", "ct_tap"),
    ("CT", "Scanner abdomino-pelvien", "ct_tap"),
    ("CT", "Scanner du rachis cervical", "ct_spine"),
    ("MR", "IRM cérébrale, AVC < 4 h 30", "mr_brain"),
])
def test_the_exam_wording_picks_its_template(modality: str, exam: str, key: str) -> None:
    assert template_for(modality, exam).key == key


def test_no_fitting_template_gives_free_text_and_inactive_ones_are_not_offered() -> None:
    assert template_for("XR", "Radiographie du poignet").key == ""
    ReportTemplate.objects.filter(key="ct_head").update(active=False)
    chosen, offered = report_templates_for_editor("CT", "CT head without contrast")
    assert chosen.key != "ct_head" and "ct_head" not in [t.key for t in offered]
    assert offered[-1].key == "" and offered[-1].pk is None
    # A draft keeps the template it was started with.
    chosen, _ = report_templates_for_editor("CT", "CT head without contrast", draft_key="ct_spine")
    assert chosen.key == "ct_spine"


def test_the_coordinator_edits_a_template_in_the_admin_and_the_editor_offers_it(demo: Any, login: Any) -> None:
    coordinator = login("coordinateur")
    tpl = ReportTemplate.objects.get(key="ct_head")
    page = coordinator.get(f"/admin/worklist/reporttemplate/{tpl.pk}/change/")
    assert page.status_code == 200
    resp = coordinator.post(f"/admin/worklist/reporttemplate/{tpl.pk}/change/", {
        "label": tpl.label, "key": tpl.key, "modality": "CT", "keywords": tpl.keywords, "order": tpl.order,
        "active": "on", "technique": "Acquisition hélicoïdale, protocole régional v2.",
        "findings": tpl.findings, "conclusion": "Pas d'anomalie aiguë décelée."})
    assert resp.status_code == 302
    entry = AuditEntry.objects.filter(action="update", object_type="worklist.reporttemplate",
                                      object_id=str(tpl.pk)).latest("id")
    assert "technique" in entry.details["fields"] and "conclusion" in entry.details["fields"]
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    radio = login("radiologue")
    assert radio.post(f"/worklist/c/{case.public_id}/do/claim").status_code == 302
    html = radio.get(f"/worklist/c/{case.public_id}/").content.decode()
    assert "Acquisition hélicoïdale, protocole régional v2." in html
    assert "Pas d&#x27;anomalie aiguë décelée." in html
    assert "Angioscanner des troncs supra-aortiques (AVC)" in html  # the other templates are offered
    # A radiologist does not edit templates.
    assert radio.get(f"/admin/worklist/reporttemplate/{tpl.pk}/change/").status_code in (302, 403)
