"""A prior retrieved from the site PACS, or one that could not be, is a case event (the case page's timeline, in
French) and, once retrieved, an act of the tele-act record, which lists every prior whose retrieval was asked."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation
from pydicom.uid import generate_uid

from apps.traceability.exports import record_fhir_bundle
from apps.traceability.labels import record_display
from apps.traceability.selectors import teleact_record_build
from apps.worklist.models import CaseEvent, CaseEventKind
from apps.worklist.priors import scu
from apps.worklist.priors.models import PriorState, PriorStudy
from tests.studies.test_services import broker, receive, reconciler_watching  # noqa: F401  (fixtures)
from tests.worklist.test_priors import PRIOR_CT, FakePacs, _case_with_study, _complete, _run_sent, pacs  # noqa: F401

pytestmark = pytest.mark.django_db


def test_a_retrieved_prior_is_on_the_timeline_and_in_the_teleact_record(
        demo: Any, pacs: FakePacs, broker: Any, login: Any, settings: Any,  # noqa: F811
        django_capture_on_commit_callbacks: Any) -> None:
    capture = django_capture_on_commit_callbacks
    case = _case_with_study(demo, capture)
    _run_sent(broker, capture)  # listed, the relevant CT requested and moved
    assert not CaseEvent.objects.filter(case=case, kind=CaseEventKind.PRIOR_RETRIEVED).exists()  # not yet here
    receive(demo.establishments["vierzon"].pk, PRIOR_CT, generate_uid(), 2)
    _complete(capture)
    prior = PriorStudy.objects.get(case=case, study_uid=PRIOR_CT)
    assert prior.state == PriorState.RETRIEVED
    (event,) = CaseEvent.objects.filter(case=case, kind=CaseEventKind.PRIOR_RETRIEVED)
    assert event.message == "Prior study retrieved from the site PACS: CT CT head 2025 10/03/2025"
    assert event.data == {"prior": prior.pk, "study_uid": PRIOR_CT, "study": prior.study_id, "automatic": True}
    settings.LANGUAGE_CODE = "fr"
    page = login("radiologue").get(f"/worklist/c/{case.public_id}/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Examen antérieur récupéré du PACS du site\u00a0: CT CT head 2025 10/03/2025" in page

    doc = teleact_record_build(case)
    (act,) = [a for a in doc["acts"] if a["act"] == "prior_retrieved"]
    assert act["study_uid"] == PRIOR_CT and act["automatic"] and act["by"] is None
    activities = [e["resource"].get("activity", {}).get("text") for e in record_fhir_bundle(doc)["entry"]]
    assert "prior_retrieved: Prior study retrieved from the site PACS" in activities  # a Provenance of its own
    (listed,) = doc["priors"]  # the MR was only listed, never asked for
    assert listed["study_uid"] == PRIOR_CT and listed["state"] == "retrieved" and listed["automatic"]
    with translation.override("fr"):
        shown = record_display(doc)
    assert shown["priors"][0]["state_label"] == "récupéré" and shown["priors"][0]["study_when"] == "10/03/2025"
    record = login("radiologue").get(f"/traceability/cases/{case.public_id}/record/",
                                     HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Examens antérieurs du PACS du site" in record and "Examen antérieur récupéré du PACS du site" in record
    assert "CT head 2025 du 10/03/2025 · récupéré" in record and "récupéré automatiquement" in record
    pdf = login("radiologue").get(f"/traceability/cases/{case.public_id}/record.pdf", HTTP_ACCEPT_LANGUAGE="fr")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_a_failed_retrieval_is_on_the_timeline_and_listed_as_failed_in_the_record(
        demo: Any, pacs: FakePacs, broker: Any, login: Any, settings: Any, monkeypatch: Any,  # noqa: F811
        django_capture_on_commit_callbacks: Any) -> None:
    capture = django_capture_on_commit_callbacks
    case = _case_with_study(demo, capture)
    monkeypatch.setattr(scu, "move_study", _unreachable)  # the query answers, the C-MOVE fails
    _run_sent(broker, capture)
    prior = PriorStudy.objects.get(case=case, study_uid=PRIOR_CT)
    assert prior.state == PriorState.FAILED
    (event,) = CaseEvent.objects.filter(case=case, kind=CaseEventKind.PRIOR_RETRIEVAL_FAILED)
    assert event.message == ("Prior study not retrieved from the site PACS (the site PACS could not be reached): "
                             "CT CT head 2025 10/03/2025")
    assert event.data == {"prior": prior.pk, "study_uid": PRIOR_CT, "error": "unreachable"}
    settings.LANGUAGE_CODE = "fr"
    page = login("radiologue").get(f"/worklist/c/{case.public_id}/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert ("Examen antérieur non récupéré du PACS du site (le PACS du site est injoignable)\u00a0: "
            "CT CT head 2025 10/03/2025") in page
    doc = teleact_record_build(case)
    assert not [a for a in doc["acts"] if a["act"] == "prior_retrieved"]
    assert [(p["study_uid"], p["state"]) for p in doc["priors"]] == [(PRIOR_CT, "failed")]


def _unreachable(site_pacs: scu.Pacs, *, study_uid: str, destination_ae: str) -> scu.MoveOutcome:
    raise scu.PacsError("unreachable", "SITEPACS@127.0.0.1:4242 no connection")
