"""What the emergency physician sees about who has the request: the current assignee, or "not yet assigned"
(routing failed, not done yet, or escalated to the coordinator), never the roster's guess nor the radiologist a
case escalated away from. Real routing on the demo region; a failure is a real database error at the routing
selector's seam."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.db import DatabaseError
from django.utils import timezone

from apps.routing.services import assignment_acknowledge, case_escalate, case_route, unassigned_reconcile
from apps.worklist.models import AssignmentState, Case, CaseEventKind
from apps.worklist.selectors import case_contact
from tests.factories.worklist import make_case
from tests.support.routing_failure import routing_broken

pytestmark = pytest.mark.django_db


def contact_html(client: Any, case: Case) -> str:
    page = client.get(f"/worklist/c/{case.public_id}/")
    assert page.status_code == 200
    found = re.search(r'<p id="case-contact".*?</p>', page.content.decode(), flags=re.S)
    assert found, "the status page says who has the request"
    return found.group(0)


def test_routing_failure_shows_not_yet_assigned_then_the_radiologist(demo: Any, login: Any) -> None:
    case = make_case(demo)
    physician = login("urgentiste")
    with routing_broken():
        with pytest.raises(DatabaseError):
            case_route(case_id=case.pk)
        unassigned_reconcile()
    case.refresh_from_db()
    assert case.assignment_state == AssignmentState.UNASSIGNED
    html = contact_html(physician, case)
    assert 'data-state="unassigned"' in html and "Not yet assigned" in html and "duty-phone" not in html
    # The timeline tells the physician what happened, once.
    assert case.events.filter(kind=CaseEventKind.INCIDENT, data__has_key="routing_error").count() == 1
    rows = physician.get("/worklist/site/").content.decode()
    assert "Not yet assigned" in rows

    unassigned_reconcile()  # routing works again
    case.refresh_from_db()
    radiologue = demo.users["radiologue"]
    assert case.assigned_to == radiologue
    html = contact_html(physician, case)
    assert 'data-state="offered"' in html and radiologue.display_name in html and "awaiting acknowledgement" in html
    assert radiologue.phone in html

    assignment_acknowledge(case_id=case.pk, user=radiologue)
    html = contact_html(physician, Case.objects.get(pk=case.pk))
    assert 'data-state="acknowledged"' in html and radiologue.display_name in html


def test_after_an_escalation_the_new_assignee_is_shown_never_the_one_who_did_not_answer(demo: Any,
                                                                                       login: Any) -> None:
    from apps.rosters.models import Shift

    physician = login("urgentiste")
    case = case_route(case_id=make_case(demo).pk)
    first = case.assigned_to
    assert first is not None and first.display_name in contact_html(physician, case)
    case = case_escalate(case_id=case.pk, now=timezone.now() + dt.timedelta(hours=1))
    second = case.assigned_to
    assert second is not None and second != first and case.assignment_state == AssignmentState.OFFERED
    html = contact_html(physician, case)
    assert second.display_name in html and first.display_name not in html

    # Nobody left to offer it to: escalated to the coordinator, nobody is named.
    Shift.objects.all().delete()
    case = case_escalate(case_id=case.pk, now=timezone.now() + dt.timedelta(hours=2))
    assert case.assignment_state == AssignmentState.COORDINATOR
    html = contact_html(physician, case)
    assert 'data-state="coordinator"' in html and "Not yet assigned" in html and "coordinator" in html
    assert first.display_name not in html and second.display_name not in html and "duty-phone" not in html


def test_the_reader_is_the_contact_and_a_closed_unread_case_has_none(demo: Any) -> None:
    from apps.worklist.services import case_claim

    case = case_route(case_id=make_case(demo, status="awaiting_reading").pk)
    other = demo.users["radio.durand1"]
    Case.objects.filter(pk=case.pk).update(assigned_to=other, assignment_state=AssignmentState.ACKNOWLEDGED)
    case = case_claim(case_id=case.pk, user=other)
    contact = case_contact(Case.objects.select_related("claimed_by", "assigned_to", "assigned_line").get(pk=case.pk))
    assert contact is not None and contact.state == "reading" and contact.name == other.display_name
    cancelled = make_case(demo, status="cancelled")
    assert case_contact(cancelled) is None


def test_not_yet_assigned_in_french(demo: Any, login: Any, settings: Any) -> None:
    settings.LANGUAGE_CODE = "fr"
    case = make_case(demo)
    html = contact_html(login("urgentiste"), case)
    assert "Pas encore attribué" in html
