"""Priors from the site PACS (apps.worklist.priors), on the database: the query's and the retrieval's state
machine, the arriving prior recognised (never a case, never routed), the audit trail, visibility, the case page
and the viewer's URL. The PACS is replaced at the network boundary (``scu``); the real one, an Orthanc, is in
tests/integration/test_priors_orthanc.py."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone
from pydicom.uid import generate_uid

from apps.accounts.authorization import ACCESS_REFUSED
from apps.audit.models import AuditEntry
from apps.regions.models import DicomNode
from apps.studies.models import Study, StudyStatus
from apps.traceability.models import TechnicalIncident
from apps.worklist.models import Case
from apps.worklist.priors import scu, services
from apps.worklist.priors.models import PriorQuery, PriorQueryState, PriorState, PriorStudy
from apps.worklist.priors.rules import PriorAnswer
from apps.worklist.selectors import studies_visible_to
from tests.factories.worklist import make_case
from tests.studies.test_services import broker, receive, reconciler_watching  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db
PRIOR_CT, PRIOR_MR, OTHER = "1.2.826.0.1.3680043.10.1", "1.2.826.0.1.3680043.10.2", "1.2.826.0.1.3680043.10.3"


class FakePacs:
    """The site PACS at the network boundary: answers C-FIND from a list, records C-MOVEs."""

    def __init__(self) -> None:
        self.answers = [
            PriorAnswer(PRIOR_CT, patient_id="PAT-0001", study_date="20250310", modalities=("CT",),
                        description="CT head 2025"),
            PriorAnswer(PRIOR_MR, patient_id="PAT-0001", study_date="20240105", modalities=("MR",),
                        description="MR brain 2024"),
            PriorAnswer(OTHER, patient_id="PAT-9999", study_date="20250101", modalities=("CT",)),
        ]
        self.moves: list[str] = []
        self.gets: list[str] = []
        self.error: scu.PacsError | None = None
        self.move_error: scu.PacsError | None = None

    def find_studies(self, pacs: scu.Pacs, keys: Any) -> list[PriorAnswer]:
        if self.error:
            raise self.error
        return self.answers

    def find_body_part(self, pacs: scu.Pacs, *, study_uid: str, modality: str) -> str:
        return ""

    def move_study(self, pacs: scu.Pacs, *, study_uid: str, destination_ae: str) -> scu.MoveOutcome:
        self.moves.append(study_uid)
        if self.error or self.move_error:
            raise self.error or self.move_error  # type: ignore[misc]
        return scu.MoveOutcome(completed=2, failed=0, warning=0)

    def get_study(self, pacs: scu.Pacs, *, study_uid: str, store: Any, **kw: Any) -> scu.MoveOutcome:
        self.gets.append(study_uid)
        if self.error:
            raise self.error
        return scu.MoveOutcome(completed=2, failed=0, warning=0)


@pytest.fixture
def pacs(monkeypatch: Any, demo: Any) -> FakePacs:
    fake = FakePacs()
    for name in ("find_studies", "find_body_part", "move_study", "get_study"):
        monkeypatch.setattr(scu, name, getattr(fake, name))
    DicomNode.objects.create(establishment=demo.establishments["vierzon"], ae_title="SITEPACS",
                             allowed_hosts="127.0.0.1/32", qr_enabled=True, qr_ae_title="SITEPACS",
                             qr_host="127.0.0.1", qr_port=4242)
    return fake


def _complete(capture: Any) -> None:
    from apps.studies.services import studies_reconcile

    with capture(execute=True):
        studies_reconcile(now=timezone.now() + dt.timedelta(seconds=60))


def _case_with_study(demo: Any, capture: Any) -> Case:
    case = make_case(demo, assign_to="radiologue", local_patient_id="PAT-0001")
    receive(demo.establishments["vierzon"].pk, generate_uid(), generate_uid(), 2)
    _complete(capture)
    case.refresh_from_db()
    assert case.studies.count() == 1
    return case


def _run_sent(broker: Any, capture: Any) -> None:  # noqa: F811
    """Play the worker: run the priors' tasks the services sent, until none is left."""
    from apps.worklist import tasks

    while True:
        todo = [(n, a) for n, a in broker.sent if n.startswith("worklist.")]
        broker.sent[:] = [(n, a) for n, a in broker.sent if not n.startswith("worklist.")]
        if not todo:
            return
        for name, args in todo:
            task = {"worklist.priors_query": tasks.priors_query_task,
                    "worklist.prior_retrieve": tasks.prior_retrieve_task}[name]
            with capture(execute=True):
                task(*args)


def test_no_query_without_a_qr_node(demo: Any, broker: Any, django_capture_on_commit_callbacks: Any):  # noqa: F811
    case = _case_with_study(demo, django_capture_on_commit_callbacks)
    assert not PriorQuery.objects.filter(case=case).exists()
    assert not [n for n, _ in broker.sent if n.startswith("worklist.prior")]


def test_query_lists_the_patients_priors_retrieves_the_relevant_one_and_recognises_it(
        demo: Any, pacs: FakePacs, broker: Any, django_capture_on_commit_callbacks: Any):  # noqa: F811
    capture = django_capture_on_commit_callbacks
    case = _case_with_study(demo, capture)
    assert PriorQuery.objects.get(case=case).state == PriorQueryState.PENDING
    _run_sent(broker, capture)
    query = PriorQuery.objects.get(case=case)
    assert query.state == PriorQueryState.DONE and query.matched_by == "patient_id"
    priors = {p.study_uid: p for p in PriorStudy.objects.filter(case=case)}
    assert set(priors) == {PRIOR_CT, PRIOR_MR}  # not the other patient's
    assert priors[PRIOR_CT].relevant and priors[PRIOR_CT].automatic
    assert priors[PRIOR_CT].state == PriorState.RETRIEVING and pacs.moves == [PRIOR_CT]
    assert priors[PRIOR_MR].state == PriorState.AVAILABLE and not priors[PRIOR_MR].relevant
    assert timezone.localtime(priors[PRIOR_CT].study_datetime).date() == dt.date(2025, 3, 10)
    # The C-MOVE's images arrive (from the site PACS's AE) and complete: a prior of the case, nothing else.
    cases_before = Case.objects.count()
    receive(demo.establishments["vierzon"].pk, PRIOR_CT, generate_uid(), 2)
    routing_before = [n for n, _ in broker.sent if n.startswith("routing.")]
    _complete(capture)
    stored = Study.objects.get(study_uid=PRIOR_CT)
    assert stored.status == StudyStatus.PRIOR and stored.case_id is None
    assert Case.objects.count() == cases_before
    assert [n for n, _ in broker.sent if n.startswith("routing.")] == routing_before  # not routed
    assert not TechnicalIncident.objects.filter(study=stored).exists()
    prior = PriorStudy.objects.get(case=case, study_uid=PRIOR_CT)
    assert prior.state == PriorState.RETRIEVED and prior.study_id == stored.pk
    events = [e.details.get("event") for e in AuditEntry.objects.filter(object_type="worklist.case",
                                                                         object_id=str(case.pk)).order_by("id")
              if e.action in ("query", "retrieve")]
    assert events == ["priors_query", "prior_retrieve_request", "prior_move"]
    assert AuditEntry.objects.filter(action="receive", object_id=str(stored.pk),
                                     details__event="prior_stored").exists()
    # On demand: the other one.
    with capture(execute=True):
        services.prior_retrieve_request(case_id=case.pk, prior_id=priors[PRIOR_MR].pk, user=demo.users["radiologue"])
    with pytest.raises(Exception) as refused:
        services.prior_retrieve_request(case_id=case.pk, prior_id=priors[PRIOR_MR].pk)
    assert getattr(refused.value, "status_code", None) == 409
    _run_sent(broker, capture)
    assert pacs.moves == [PRIOR_CT, PRIOR_MR]


def test_visibility_and_viewer_url_follow_the_case(demo: Any, pacs: FakePacs, broker: Any, login: Any,  # noqa: F811
                                                   django_capture_on_commit_callbacks: Any, settings: Any):
    capture = django_capture_on_commit_callbacks
    case = _case_with_study(demo, capture)
    _run_sent(broker, capture)
    receive(demo.establishments["vierzon"].pk, PRIOR_CT, generate_uid(), 1)
    _complete(capture)
    stored = Study.objects.get(study_uid=PRIOR_CT)
    assert studies_visible_to(demo.users["radiologue"]).filter(pk=stored.pk).exists()
    assert studies_visible_to(demo.users["urgentiste"]).filter(pk=stored.pk).exists()
    assert not studies_visible_to(demo.users["urgentiste.blois"]).filter(pk=stored.pk).exists()
    others = [u for u in demo.users.values() if u.role == "radiologist" and u.username != "radiologue"]
    for other in others:
        assert not studies_visible_to(other).filter(pk=stored.pk).exists() or \
            studies_visible_to(other).filter(case=case).exists()
    # The viewer opens the case's study and the retrieved prior together.
    from apps.worklist import ohif

    settings.PDS_OHIF_ROOT = str(settings.BASE_DIR / "var" / "ohif")
    if ohif.ohif_installed():
        r = login("radiologue").get(f"/worklist/c/{case.public_id}/ohif/")
        query = parse_qs(urlparse(r["Location"]).query)
        assert query["StudyInstanceUIDs"][0].split(",") == [case.studies.get().study_uid, PRIOR_CT]
        assert query["hangingProtocolId"] == ["@ohif/hpCompare"]
    assert "hangingProtocolId" not in ohif.ohif_study_url(["1.2.3"], compare=True)  # nothing to compare with


def test_case_page_lists_priors_and_retrieves_on_demand(demo: Any, pacs: FakePacs, broker: Any,  # noqa: F811
                                                        login: Any, django_capture_on_commit_callbacks: Any):
    capture = django_capture_on_commit_callbacks
    case = _case_with_study(demo, capture)
    _run_sent(broker, capture)
    client = login("radiologue")
    page = client.get(f"/worklist/c/{case.public_id}/").content.decode()
    assert 'id="priors"' in page and "CT head 2025" in page and "MR brain 2024" in page
    assert PRIOR_MR in page and OTHER not in page
    mr = PriorStudy.objects.get(case=case, study_uid=PRIOR_MR)
    # The section is polled: unchanged, nothing; once a state changes, its new HTML.
    version = client.get(f"/worklist/c/{case.public_id}/").context["priors"].version
    polled = client.get(f"/worklist/c/{case.public_id}/priors", {"v": version}).json()
    assert polled == {"changed": False, "version": version}
    with capture(execute=True):
        r = client.post(f"/worklist/c/{case.public_id}/do/prior_retrieve", {"prior": mr.pk})
    assert r.status_code == 302
    assert PriorStudy.objects.get(pk=mr.pk).state == PriorState.REQUESTED
    polled = client.get(f"/worklist/c/{case.public_id}/priors", {"v": version}).json()
    assert polled["changed"] and f'data-study-uid="{PRIOR_MR}" data-state="requested"' in polled["html"]
    assert login("urgentiste.blois").get(f"/worklist/c/{case.public_id}/priors").status_code == 404
    assert AuditEntry.objects.filter(action="retrieve", object_id=str(case.pk), actor_username="radiologue",
                                     details__study_uid=PRIOR_MR).exists()
    # Another establishment's physician: 404, audited; the establishment's admin: 403, audited.
    refused_before = AuditEntry.objects.filter(action=ACCESS_REFUSED).count()
    r = login("urgentiste.blois").post(f"/worklist/c/{case.public_id}/do/prior_retrieve", {"prior": mr.pk})
    assert r.status_code == 404
    r = login("admin.vierzon").post(f"/worklist/c/{case.public_id}/do/prior_retrieve", {"prior": mr.pk},
                                    HTTP_ACCEPT="application/json")
    assert r.status_code in (403, 404)
    assert AuditEntry.objects.filter(action=ACCESS_REFUSED).count() >= refused_before + 2


def test_errors_are_recorded_and_shown_in_french(demo: Any, pacs: FakePacs, broker: Any, login: Any,  # noqa: F811
                                                 django_capture_on_commit_callbacks: Any, settings: Any):
    capture = django_capture_on_commit_callbacks
    pacs.error = scu.PacsError("unreachable", "SITEPACS@127.0.0.1:4242 no connection")
    case = _case_with_study(demo, capture)
    _run_sent(broker, capture)
    query = PriorQuery.objects.get(case=case)
    assert query.state == PriorQueryState.FAILED and query.error.startswith("unreachable")
    assert AuditEntry.objects.filter(action="query", object_id=str(case.pk), details__outcome="failed").exists()
    settings.LANGUAGE_CODE = "fr"
    page = login("radiologue").get(f"/worklist/c/{case.public_id}/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Examens antérieurs" in page and "Le PACS du site" in page and 'id="priors-query-again"' in page
    # The PACS is back: the radiologist asks again (audited), the worker lists the priors.
    pacs.error = None
    with capture(execute=True):
        r = login("radiologue").post(f"/worklist/c/{case.public_id}/do/priors_query")
    assert r.status_code == 302
    assert AuditEntry.objects.filter(action="query", object_id=str(case.pk), actor_username="radiologue",
                                     details__event="priors_query_retry").exists()
    _run_sent(broker, capture)
    assert PriorQuery.objects.get(case=case).state == PriorQueryState.DONE
    assert PriorStudy.objects.filter(case=case).count() == 2
    with pytest.raises(Exception) as refused:  # only after a failure
        services.priors_query_retry(case_id=case.pk)
    assert getattr(refused.value, "status_code", None) == 409


def test_a_retrieval_whose_images_never_come_fails_and_may_be_asked_again(
        demo: Any, pacs: FakePacs, broker: Any, django_capture_on_commit_callbacks: Any):  # noqa: F811
    capture = django_capture_on_commit_callbacks
    case = _case_with_study(demo, capture)
    _run_sent(broker, capture)
    prior = PriorStudy.objects.get(case=case, study_uid=PRIOR_CT)
    later = timezone.now() + dt.timedelta(hours=2)
    with capture(execute=True):
        result = services.priors_redrive(now=later)
    assert result["not_arrived"] == 1
    prior.refresh_from_db()
    assert prior.state == PriorState.FAILED and prior.error.startswith("not_arrived")
    services.prior_retrieve_request(case_id=case.pk, prior_id=prior.pk)
    assert PriorStudy.objects.get(pk=prior.pk).state == PriorState.REQUESTED


def test_redrive_sends_again_a_pending_query(demo: Any, pacs: FakePacs, broker: Any,  # noqa: F811
                                             django_capture_on_commit_callbacks: Any):
    capture = django_capture_on_commit_callbacks
    case = _case_with_study(demo, capture)
    broker.sent.clear()  # the message was lost
    with capture(execute=True):
        services.priors_redrive(now=timezone.now() + dt.timedelta(minutes=5))
    assert ("worklist.priors_query", [case.pk]) in broker.sent


def test_no_query_before_the_case_has_its_study(demo: Any, pacs: FakePacs, login: Any, broker: Any):  # noqa: F811
    """Tonight's study may already be on the site PACS: queried before it arrives, it would pass for a prior."""
    case = make_case(demo, assign_to="radiologue", local_patient_id="PAT-0001")
    assert services.priors_query_request(case_id=case.pk) is False
    page = login("radiologue").get(f"/worklist/c/{case.public_id}/").content.decode()
    assert 'id="priors"' not in page and not PriorQuery.objects.filter(case=case).exists()


def test_a_qr_node_needs_its_pacs_address(demo: Any):
    from django.core.exceptions import ValidationError

    node = DicomNode(establishment=demo.establishments["vierzon"], ae_title="X_PACS", allowed_hosts="127.0.0.1",
                     qr_enabled=True, qr_ae_title="X_PACS")
    with pytest.raises(ValidationError) as missing:
        node.clean()
    assert set(missing.value.message_dict) == {"qr_host", "qr_port"}
    node.qr_enabled = False
    node.clean()  # a plain sender needs none of it


@pytest.mark.parametrize("method, move_error, sent, event, state", [
    ("move", None, (1, 0), "prior_move", PriorState.RETRIEVING),
    ("get", None, (0, 1), "prior_get", PriorState.RETRIEVING),
    # The PACS refused to send to the gateway (it does not know it, or cannot reach it): asked again by C-GET.
    ("move", scu.PacsError("failed", "C-MOVE status 0xA801, 0 sent, 0 failed", status=0xA801), (1, 1), "prior_get",
     PriorState.RETRIEVING),
    # Unreachable, or no answer in time: a C-GET would fare no better; the retrieval fails with the reason.
    ("move", scu.PacsError("unreachable", "SITEPACS@127.0.0.1:4242 no connection"), (1, 0), "prior_retrieve",
     PriorState.FAILED),
])
def test_the_retrieval_by_c_move_or_c_get(demo: Any, pacs: FakePacs, broker: Any,  # noqa: F811
                                         django_capture_on_commit_callbacks: Any, method: str, move_error: Any,
                                         sent: tuple[int, int], event: str, state: str):
    capture = django_capture_on_commit_callbacks
    DicomNode.objects.filter(ae_title="SITEPACS").update(qr_retrieve=method)
    pacs.move_error = move_error
    case = _case_with_study(demo, capture)
    _run_sent(broker, capture)
    assert (len(pacs.moves), len(pacs.gets)) == sent
    prior = PriorStudy.objects.get(case=case, study_uid=PRIOR_CT)
    assert prior.state == state
    entry = AuditEntry.objects.filter(action="retrieve", object_id=str(case.pk), details__event=event).get()
    if move_error is not None and state == PriorState.RETRIEVING:
        assert entry.details["move_refused"].startswith("C-MOVE status 0xA801")
    if state == PriorState.FAILED:
        assert prior.error.startswith("unreachable") and entry.details["outcome"] == "failed"
