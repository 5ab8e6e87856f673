"""An ultrasound study received by DICOM (issue 18, point 6): never routed, but recorded (a redirected case, its
timeline, an incident), announced to the requesting site and the coordinator with the centre to send the patient
to, and shown in the site's unmatched list with that reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from pydicom.uid import generate_uid

from apps.routing.models import Notification
from apps.studies.models import Study, StudyStatus
from apps.traceability.models import IncidentKind, TechnicalIncident
from apps.worklist.models import CaseEventKind, CaseStatus, Origin
from apps.worklist.selectors import ultrasound_studies_received, unmatched_studies
from tests.factories.dicom import US_IMAGE_STORAGE
from tests.factories.worklist import make_case
from tests.studies.test_services import broker, receive, reconciler_watching  # noqa: F401  (fixtures)


def _complete(study: Study, django_capture_on_commit_callbacks: Any) -> Study:
    from apps.studies import services

    with django_capture_on_commit_callbacks(execute=True):
        services.studies_reconcile(now=timezone.now() + dt.timedelta(seconds=60))
    study.refresh_from_db()
    return study


@pytest.mark.django_db
def test_ultrasound_by_dicom_is_recorded_announced_and_listed(demo: Any, broker: Any,  # noqa: F811
                                                              django_capture_on_commit_callbacks: Any) -> None:
    site = demo.establishments["vierzon"]
    study = receive(site.pk, generate_uid(), generate_uid(), 2, modality="US", sop_class=US_IMAGE_STORAGE)
    study = _complete(study, django_capture_on_commit_callbacks)
    assert study.status == StudyStatus.NOT_ROUTED
    assert [name for name, _args in broker.sent if name != "routing.deliver_notification"] == []  # never routed
    case = study.case
    assert case is not None and case.status == CaseStatus.REDIRECTED and case.origin == Origin.DICOM
    redirected = case.events.get(kind=CaseEventKind.REDIRECTED)
    assert "Bourges" in redirected.message and redirected.data["origin"] == Origin.DICOM
    incident = TechnicalIncident.objects.get(kind=IncidentKind.ULTRASOUND_RECEIVED, study=study)
    assert incident.establishment_id == site.pk and incident.case_id == case.pk
    alerted = set(Notification.objects.filter(case=case, kind="redirected").values_list("user__username", flat=True))
    assert {"urgentiste", "manip", "coordinateur"} <= alerted
    assert "urgentiste.blois" not in alerted  # another site's physician
    body = Notification.objects.filter(case=case, user__username="urgentiste").first()
    assert body is not None and "Bourges" in body.body and "send the patient to" in body.body
    # In the site's unmatched list, with the reason; never offered for matching to a request.
    user = demo.users["urgentiste"]
    assert [s.pk for s in ultrasound_studies_received(user=user)] == [study.pk]
    assert study.pk not in [s.pk for s in unmatched_studies(user=user)]
    assert not ultrasound_studies_received(user=demo.users["urgentiste.blois"]).exists()


@pytest.mark.django_db
def test_ultrasound_study_joins_its_typed_request(demo: Any, broker: Any,  # noqa: F811
                                                  django_capture_on_commit_callbacks: Any) -> None:
    request = make_case(demo, modality_code="US", exam="Abdominal ultrasound", urgency="urgent",
                        local_patient_id="IPP-US-1")
    assert request.status == CaseStatus.REDIRECTED
    study = receive(demo.establishments["vierzon"].pk, generate_uid(), generate_uid(), 1, modality="US",
                    sop_class=US_IMAGE_STORAGE)
    Study.objects.filter(pk=study.pk).update(patient_id="IPP-US-1")
    study = _complete(study, django_capture_on_commit_callbacks)
    assert study.case_id == request.pk and study.status == StudyStatus.NOT_ROUTED
    assert request.events.filter(kind=CaseEventKind.IMAGES_COMPLETE).exists()
    # The physician typed it and saw the redirection: nobody else is alerted again.
    assert not Notification.objects.filter(case=request, kind="redirected").exists()


@pytest.mark.django_db
def test_matching_page_shows_the_ultrasound_reason(demo: Any, broker: Any, login: Any,  # noqa: F811
                                                   django_capture_on_commit_callbacks: Any) -> None:
    study = receive(demo.establishments["vierzon"].pk, generate_uid(), generate_uid(), 1, modality="US",
                    sop_class=US_IMAGE_STORAGE)
    _complete(study, django_capture_on_commit_callbacks)
    resp = login("urgentiste").get("/worklist/site/matching/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert 'id="ultrasound-studies"' in html and "Bourges" in html


@pytest.mark.django_db
def test_child_request_names_the_near_general_centre_and_the_pole(demo: Any) -> None:
    child = make_case(demo, modality_code="US", exam="Abdominal ultrasound",
                      patient_birth_date=timezone.localdate() - dt.timedelta(days=8 * 365 + 30))
    event = child.events.get(kind=CaseEventKind.REDIRECTED)
    assert "Bourges" in event.message and event.data["within_bound"] is True and event.data["child"] is True
    assert "Paediatric ultrasound pole" in event.message
