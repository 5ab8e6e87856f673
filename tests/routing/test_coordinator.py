"""No dead end at the coordinator (issue 18, point 1): the console lists the cases waiting on them with why,
who is on duty, and assigns by hand to a radiologist whose employer has an agreement in force (reason recorded,
audited); a case waiting on the coordinator is re-offered as soon as someone new comes on duty."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.core.errors import ApplicationError, PermissionDeniedError
from apps.regions.models import Agreement, AgreementStatus
from apps.rosters.models import OnCallLine, Shift
from apps.routing.coordinator import case_assign_by_coordinator
from apps.routing.models import RoutingDecision
from apps.routing.services import assignment_acknowledge, case_route, unassigned_reconcile
from apps.worklist.models import AssignmentState, CaseEventKind
from tests.factories.worklist import make_case


def _stranded(demo):
    """An MR case at Vierzon while only Bourges radiologists hold the southern pooled line, Bourges's
    agreement with Vierzon having expired; the provider reads CT only: the case goes to the coordinator."""
    now = timezone.now()
    Agreement.objects.filter(requesting=demo.establishments["vierzon"], partner=demo.establishments["bourges"]) \
        .update(status=AgreementStatus.EXPIRED, valid_until=now.date() - dt.timedelta(days=1))
    line = OnCallLine.objects.get(region=demo.region, name__startswith="Ligne mutualisée Sud")
    Shift.objects.filter(line=line, end__gt=now - dt.timedelta(hours=1)).delete()
    for username, role in (("radio.vincent6", "primary"), ("radio.david9", "backup")):
        Shift.objects.create(line=line, radiologist=demo.users[username], role=role, kind="garde",
                             start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=8))
    case = case_route(case_id=make_case(demo, modality_code="MR", exam="IRM cérébrale", urgency="urgent").pk)
    assert case.assignment_state == AssignmentState.COORDINATOR
    return case, line


def test_console_lists_waiting_cases_with_reasons_and_who_may_take_them(demo, client):
    case, _line = _stranded(demo)
    client.force_login(demo.users["coordinateur"])
    resp = client.get("/routing/console/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert f'id="case-{case.pk}"' in html
    assert "no agreement in force between" in html and "does not cover this modality" in html
    assert f'<option value="{demo.users["radio.durand1"].pk}">' in html      # Tours: agreement in force
    assert f'<option value="{demo.users["radio.vincent6"].pk}">' not in html  # Bourges: expired
    on_duty = html[html.index('id="on-duty"'):]
    assert demo.users["radio.vincent6"].display_name in on_duty              # ... but on duty now
    assert AuditEntry.objects.filter(action="list", details__view="coordinator console").exists()


@pytest.mark.parametrize("username", ["radiologue", "urgentiste", "admin.vierzon"])
def test_console_is_the_coordinators_only(demo, client, username):
    client.force_login(demo.users[username])
    assert client.get("/routing/console/").status_code == 403


def test_coordinator_assigns_by_hand_with_a_reason(demo, client):
    case, _line = _stranded(demo)
    client.force_login(demo.users["coordinateur"])
    resp = client.post(f"/routing/console/{case.pk}/assign/", {
        "radiologist": demo.users["radio.vincent6"].pk, "reason": "Seul disponible"}, follow=True)
    assert "No agreement in force" in resp.content.decode()
    case.refresh_from_db()
    assert case.assignment_state == AssignmentState.COORDINATOR
    resp = client.post(f"/routing/console/{case.pk}/assign/", {
        "radiologist": demo.users["radio.durand1"].pk, "reason": "Joint par téléphone, d'accord"})
    assert resp.status_code == 302
    case.refresh_from_db()
    assert case.assignment_state == AssignmentState.OFFERED and case.assigned_to == demo.users["radio.durand1"]
    decision = RoutingDecision.objects.filter(case=case).order_by("-attempt").first()
    assert decision.trigger == "coordinator" and "Joint par téléphone" in decision.reasons[0]
    assert case.events.filter(kind=CaseEventKind.ASSIGNED, data__trigger="coordinator").exists()
    assert AuditEntry.objects.filter(action="assign", details__trigger="coordinator").exists()
    case = assignment_acknowledge(case_id=case.pk, user=demo.users["radio.durand1"])
    assert case.assignment_state == AssignmentState.ACKNOWLEDGED


def test_assignment_by_hand_refused(demo):
    case, _line = _stranded(demo)
    with pytest.raises(ApplicationError, match="Say why"):
        case_assign_by_coordinator(case_id=case.pk, radiologist_id=demo.users["radio.durand1"].pk, reason=" ",
                                   actor=demo.users["coordinateur"])
    with pytest.raises(PermissionDeniedError):
        case_assign_by_coordinator(case_id=case.pk, radiologist_id=demo.users["radio.durand1"].pk, reason="x",
                                   actor=demo.users["radiologue"])


def test_case_is_reoffered_when_someone_suitable_comes_on_duty(demo):
    case, line = _stranded(demo)
    unassigned_reconcile()
    case.refresh_from_db()
    assert case.assignment_state == AssignmentState.COORDINATOR  # nobody new: left with the coordinator
    alerts = case.events.filter(kind=CaseEventKind.ESCALATED).count()
    now = timezone.now()
    Shift.objects.create(line=line, radiologist=demo.users["radio.garcia2"], role="primary", kind="garde",
                         start=now - dt.timedelta(minutes=5), end=now + dt.timedelta(hours=8))  # Tours
    unassigned_reconcile()
    case.refresh_from_db()
    assert case.assignment_state == AssignmentState.OFFERED and case.assigned_to == demo.users["radio.garcia2"]
    assert RoutingDecision.objects.filter(case=case, trigger="reoffer").count() == 1
    assert case.events.filter(kind=CaseEventKind.ESCALATED).count() == alerts  # no new alert meanwhile
