"""The request detail of the API says who has the request, like the physician's page: "Not yet assigned"
while routing has not assigned it (here: routing fails with a real database error), then the radiologist and
how to reach them, and after an escalation the new one, never the one who did not answer. Real routing on the
demo region, a RIS key of the demo's Vierzon hospital."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.api.services import api_key_create
from apps.routing.services import case_escalate, unassigned_reconcile
from apps.worklist.models import Case
from tests.api.conftest import REQUEST_BODY
from tests.support.routing_failure import routing_broken

pytestmark = pytest.mark.django_db


def test_request_detail_names_the_current_assignee_or_says_not_yet_assigned(demo: Any) -> None:
    from apps.rosters.models import Shift

    _, raw = api_key_create(name="RIS Vierzon", establishment_id=demo.establishments["vierzon"].pk,
                            scope="read_write")
    ris = APIClient()
    ris.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    created = ris.post("/api/v1/requests/", REQUEST_BODY, format="json").json()
    url = f"/api/v1/requests/{created['id']}/"
    case = Case.objects.get(public_id=created["id"])

    with routing_broken():
        unassigned_reconcile()
    assignment = ris.get(url).json()["assignment"]
    assert assignment["state"] == "unassigned" and assignment["label"] == "Not yet assigned"
    assert assignment["contact"] is None and assignment["radiologist"] is None

    unassigned_reconcile()  # routing works again
    radiologue = demo.users["radiologue"]
    assignment = ris.get(url).json()["assignment"]
    assert assignment["state"] == "offered" and radiologue.display_name in assignment["label"]
    assert assignment["contact"]["name"] == radiologue.display_name
    assert assignment["contact"]["phone"] == radiologue.phone and assignment["contact"]["line"]

    case = case_escalate(case_id=case.pk, now=timezone.now() + dt.timedelta(hours=1))
    assert case.assigned_to not in (None, radiologue)
    detail = ris.get(f"{url}assignment/").json()
    assert detail["contact"]["name"] == case.assigned_to.display_name == detail["radiologist"]
    assert radiologue.display_name not in detail["label"]

    Shift.objects.all().delete()  # nobody left on duty: escalated to the coordinator
    case = case_escalate(case_id=case.pk, now=timezone.now() + dt.timedelta(hours=2))
    assignment = ris.get(url).json()["assignment"]
    assert assignment["state"] == "coordinator" and assignment["label"].startswith("Not yet assigned")
    assert assignment["contact"] is None and assignment["radiologist"] is None and assignment["line"] is None
