"""No dead end at the coordinator (issue 18, point 1), the rest of it: a radiologist who let a case go
unanswered and then acknowledges their backlog is offered the waiting case again (at once, by the worker),
and a case with no line that the coordinator gives by hand is seen, acknowledged, claimed and reported by the
assignee through the web app."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from apps.regions.models import Agreement, AgreementStatus
from apps.rosters.models import OnCallLine, Shift
from apps.routing import tasks
from apps.routing.coordinator import case_assign_by_coordinator
from apps.routing.models import RoutingDecision
from apps.routing.services import assignment_acknowledge, case_escalate, case_route, unassigned_reconcile
from apps.worklist.models import AssignmentState, Case, CaseStatus
from tests.factories.worklist import make_case


def _expire_bourges(demo) -> None:
    Agreement.objects.filter(requesting=demo.establishments["vierzon"], partner=demo.establishments["bourges"]) \
        .update(status=AgreementStatus.EXPIRED, valid_until=timezone.now().date() - dt.timedelta(days=1))


def _pool_south_now(demo, *usernames_roles: tuple[str, str]) -> OnCallLine:
    now = timezone.now()
    line = OnCallLine.objects.get(region=demo.region, name__startswith="Ligne mutualisée Sud")
    Shift.objects.filter(line=line, end__gt=now - dt.timedelta(hours=1)).delete()
    for username, role in usernames_roles:
        Shift.objects.create(line=line, radiologist=demo.users[username], role=role, kind="garde",
                             start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=8))
    return line


def _let_go(demo, case: Case) -> Case:
    """Nobody acknowledges: the case escalates until the coordinator has it."""
    for _ in range(4):
        case = case_escalate(case_id=case.pk, now=timezone.now() + dt.timedelta(hours=2))
        if case.assignment_state == AssignmentState.COORDINATOR:
            return case
    raise AssertionError("the case never reached the coordinator")


def test_reoffered_when_the_silent_radiologist_acknowledges_a_backlog(demo, monkeypatch,
                                                                      django_capture_on_commit_callbacks):
    _expire_bourges(demo)
    _pool_south_now(demo, ("radio.durand1", "primary"), ("radio.vincent6", "backup"))  # Tours; Bourges
    backlog = case_route(case_id=make_case(demo, urgency="deferred").pk)
    assert backlog.assigned_to == demo.users["radio.durand1"]
    case = case_route(case_id=make_case(demo, modality_code="MR", exam="IRM", urgency="urgent").pk)
    assert case.assigned_to == demo.users["radio.durand1"]
    case = _let_go(demo, case)  # Dr Durand does not answer; Bourges may not read for Vierzon
    unassigned_reconcile()
    case.refresh_from_db()
    assert case.assignment_state == AssignmentState.COORDINATOR  # still silent: not offered again
    sent: list[tuple[str, list]] = []
    monkeypatch.setattr("apps.routing.queue.app.send_task", lambda name, args=None, **kw: sent.append((name, args)))
    with django_capture_on_commit_callbacks(execute=True):
        assignment_acknowledge(case_id=backlog.pk, user=demo.users["radio.durand1"])  # he is back
    assert ("routing.reoffer_waiting", [demo.region.pk]) in sent
    assert tasks.reoffer_waiting(demo.region.pk) == 1  # what the worker runs on that message
    case.refresh_from_db()
    assert case.assignment_state == AssignmentState.OFFERED and case.assigned_to == demo.users["radio.durand1"]
    assert RoutingDecision.objects.filter(case=case, trigger="reoffer").count() == 1


def test_declined_stays_excluded_even_after_a_backlog(demo):
    from apps.routing.services import assignment_decline

    _expire_bourges(demo)
    _pool_south_now(demo, ("radio.durand1", "primary"))
    backlog = case_route(case_id=make_case(demo, urgency="deferred").pk)
    case = case_route(case_id=make_case(demo, modality_code="MR", exam="IRM", urgency="urgent").pk)
    case = assignment_decline(case_id=case.pk, user=demo.users["radio.durand1"], reason="Pas d'IRM")
    assert case.assignment_state == AssignmentState.COORDINATOR
    assignment_acknowledge(case_id=backlog.pk, user=demo.users["radio.durand1"])
    assert tasks.reoffer_waiting(demo.region.pk) == 0


def test_hand_assigned_case_without_a_line_is_workable_by_the_assignee(demo, client):
    _expire_bourges(demo)
    _pool_south_now(demo, ("radio.vincent6", "primary"), ("radio.david9", "backup"))  # both Bourges
    case = case_route(case_id=make_case(demo, modality_code="MR", exam="IRM cérébrale", urgency="urgent",
                                        status="awaiting_reading").pk)
    assert case.assignment_state == AssignmentState.COORDINATOR and case.assigned_line_id is None
    who = demo.users["radio.durand1"]  # Tours, not on duty: reached by phone
    case_assign_by_coordinator(case_id=case.pk, radiologist_id=who.pk, reason="Joint par téléphone",
                               actor=demo.users["coordinateur"])
    client.force_login(who)
    assert str(case.public_id) in client.get("/worklist/rows").json()["html"]
    page = f"/worklist/c/{case.public_id}/"
    assert client.get(page).status_code == 200
    for name, data in (("acknowledge", {}), ("claim", {}),
                       ("sign", {"findings": "Pas d'anomalie.", "conclusion": "Normal."})):
        resp = client.post(f"{page}do/{name}", data, HTTP_ACCEPT="application/json")
        assert resp.status_code == 200, (name, resp.content)
    case.refresh_from_db()
    assert case.status == CaseStatus.REPORTED and case.claimed_by == who and case.assigned_line_id is None
    # A Bourges radiologist on duty still neither sees it nor may act on it.
    client.force_login(demo.users["radio.vincent6"])
    assert client.get(page).status_code == 404
