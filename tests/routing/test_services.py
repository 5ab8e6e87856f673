"""Routing services on the demo region: assignment, decline, hand-back, escalation chain, coordinator."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.routing import notifiers
from apps.routing.models import DecisionOutcome, Notification, RoutingDecision
from apps.routing.services import (
    assignment_acknowledge,
    assignment_decline,
    assignment_hand_back,
    case_escalate,
    case_route,
    escalations_run,
)
from apps.routing.tasks import deliver_notification
from apps.traceability.models import IncidentKind, TechnicalIncident
from apps.worklist.models import AssignmentState, Case, CaseEventKind, CaseStatus
from apps.worklist.services import CaseInput, case_create


def _case(demo, site="vierzon", modality="CT", urgency="urgent", status=None, **kw):
    data = CaseInput(patient_birth_name="DUPONT", patient_first_names="Jean", patient_sex="M",
                     patient_birth_date=dt.date(1950, 1, 1), clinical_question="AVC ?", modality_code=modality,
                     exam="Scanner cérébral", urgency=urgency, **kw)
    case, _ = case_create(site_id=demo.establishments[site].pk, data=data,
                          requested_by_id=demo.users["urgentiste"].pk)
    if status:
        Case.objects.filter(pk=case.pk).update(status=status)
    return case


@pytest.fixture
def worker_messages(monkeypatch):
    """The delivery messages the committing process hands to the broker, for the test to run as a worker."""
    sent: list[tuple[str, list]] = []
    monkeypatch.setattr(notifiers.app, "send_task", lambda name, args=None, **kw: sent.append((name, args)))
    return sent


def _worker_runs(messages):
    for name, args in messages:
        if name == "routing.deliver_notification":
            deliver_notification(*args)


def test_request_goes_to_radiologue_for_validation(demo):
    case = _case(demo)
    case = case_route(case_id=case.pk)
    assert case.assignment_state == AssignmentState.OFFERED
    assert case.assigned_to == demo.users["radiologue"]
    assert case.assigned_line.name.startswith("Ligne mutualisée Sud")
    assert case.escalation_due_at is not None and case.assigned_at is not None
    decision = RoutingDecision.objects.get(case=case)
    assert decision.outcome == DecisionOutcome.ASSIGNED and decision.purpose == "validation"
    assert decision.rule.name.startswith("Demi-région Sud") and decision.candidates and decision.reasons
    assert case.events.filter(kind=CaseEventKind.ASSIGNED).count() == 1
    assert Notification.objects.filter(user=demo.users["radiologue"], case=case, channel="in_app").exists()
    # Idempotent: routing again leaves it alone.
    case_route(case_id=case.pk)
    assert RoutingDecision.objects.filter(case=case).count() == 1


def test_acknowledge_decline_hand_back(demo):
    case = case_route(case_id=_case(demo).pk)
    radiologue = demo.users["radiologue"]
    with pytest.raises(ApplicationError):
        assignment_acknowledge(case_id=case.pk, user=demo.users["radio.durand1"])
    case = assignment_decline(case_id=case.pk, user=radiologue, reason="Déjà trois scanners en attente")
    assert case.assigned_to != radiologue and case.assignment_state == AssignmentState.OFFERED
    other = case.assigned_to
    case = assignment_acknowledge(case_id=case.pk, user=other)
    assert case.assignment_state == AssignmentState.ACKNOWLEDGED and case.acknowledged_at
    case = assignment_hand_back(case_id=case.pk, user=other, reason="Fin de garde")
    assert case.assigned_to not in (other, radiologue)
    assert case.assignment_state == AssignmentState.OFFERED


def test_escalation_chain_to_coordinator(demo):
    case = case_route(case_id=_case(demo, urgency="vital").pk)
    seen = [case.assigned_to_id]
    for _ in range(6):
        later = timezone.now() + dt.timedelta(hours=1)
        case = case_escalate(case_id=case.pk, now=later)
        if case.assignment_state == AssignmentState.COORDINATOR:
            break
        seen.append(case.assigned_to_id)
    assert case.assignment_state == AssignmentState.COORDINATOR
    lines = [d.line.kind for d in RoutingDecision.objects.filter(case=case, outcome="assigned")]
    assert lines[:2] == ["pooled", "pooled"] and "provider" in lines
    assert TechnicalIncident.objects.filter(case=case, kind=IncidentKind.ESCALATED_TO_COORDINATOR).exists()
    assert Notification.objects.filter(user=demo.users["coordinateur"], case=case).exists()
    assert escalations_run(now=timezone.now() + dt.timedelta(days=1)) == 0


def test_reading_after_images(demo):
    case = _case(demo, modality="MR", status=CaseStatus.AWAITING_READING)
    case = case_route(case_id=case.pk)
    assert RoutingDecision.objects.get(case=case).purpose == "reading"


def test_failed_sms_escalates_at_once(demo, settings, tmp_path, django_capture_on_commit_callbacks,
                                      worker_messages):
    settings.PDS_SMS_BACKEND = "apps.routing.notifiers.FileSmsBackend"
    settings.PDS_SMS_FILE = str(tmp_path / "missing-dir" / "sms.log")  # cannot be written
    case = _case(demo, urgency="urgent")
    with django_capture_on_commit_callbacks(execute=True):
        case = case_route(case_id=case.pk)
    _worker_runs(worker_messages)
    sms = Notification.objects.get(case=case, channel="sms", user=demo.users["radiologue"])
    assert sms.status == "failed" and sms.error
    assert Notification.objects.get(case=case, channel="email", user=demo.users["radiologue"]).status == "sent"
    case.refresh_from_db()
    assert case.escalation_due_at <= timezone.now()  # instead of 15 minutes
    assert TechnicalIncident.objects.filter(case=case, kind=IncidentKind.NOTIFICATION_FAILED).exists()
    assert escalations_run() == 1
    case.refresh_from_db()
    assert case.assigned_to != demo.users["radiologue"] and case.escalation_level == 1


def test_sms_file_backend_writes_the_alert(demo, settings, tmp_path, django_capture_on_commit_callbacks,
                                           worker_messages):
    settings.PDS_SMS_BACKEND = "apps.routing.notifiers.FileSmsBackend"
    settings.PDS_SMS_FILE = str(tmp_path / "sms.log")
    with django_capture_on_commit_callbacks(execute=True):
        case = case_route(case_id=_case(demo).pk)
    _worker_runs(worker_messages)
    line = (tmp_path / "sms.log").read_text()
    assert demo.users["radiologue"].phone in line and f"#{case.pk}" in line
    assert Notification.objects.get(case=case, channel="sms").status == "sent"


def test_the_committing_process_sends_no_sms_a_worker_does_once(demo, settings, tmp_path,
                                                                django_capture_on_commit_callbacks,
                                                                worker_messages):
    settings.PDS_SMS_BACKEND = "apps.routing.notifiers.FileSmsBackend"
    settings.PDS_SMS_FILE = str(tmp_path / "sms.log")
    with django_capture_on_commit_callbacks(execute=True):
        case = case_route(case_id=_case(demo).pk)
    sms = Notification.objects.get(case=case, channel="sms")
    assert not (tmp_path / "sms.log").exists() and sms.status == "pending"  # nothing sent by the committer
    external = Notification.objects.filter(case=case).exclude(channel="in_app")
    assert (sorted(args[0] for name, args in worker_messages if name == "routing.deliver_notification")
            == sorted(external.values_list("pk", flat=True)))
    _worker_runs(worker_messages)
    _worker_runs(worker_messages)  # a redelivered message: the notification is no longer pending
    assert (tmp_path / "sms.log").read_text().count(f"#{case.pk}") == 1
    assert deliver_notification(sms.pk) == "skipped"


def test_overflow_to_provider_when_pool_is_loaded(demo):
    from apps.routing.selectors import on_duty

    now = timezone.now()
    pool = [d for d in on_duty(site_id=demo.establishments["vierzon"].pk, modality_code="CT", at=now)
            if d.line_name.startswith("Ligne mutualisée Sud")]
    for d in pool:  # 4 vital CTs each: 4 x 1.0 x 2.0 = 8 > threshold 6
        for _ in range(4):
            c = _case(demo, urgency="vital", status=CaseStatus.AWAITING_READING)
            Case.objects.filter(pk=c.pk).update(assignment_state="acknowledged", assigned_to_id=d.radiologist_id)
    case = case_route(case_id=_case(demo).pk)
    assert case.overflowed and case.assigned_line.kind == "provider"
    decision = RoutingDecision.objects.get(case=case)
    assert decision.overflowed and any("overflow" in r for r in decision.reasons)
    mr = case_route(case_id=_case(demo, modality="MR").pk)  # the provider does not read MR: stays on the pool
    assert not mr.overflowed and mr.assigned_line.kind == "pooled"


def test_ultrasound_is_never_routed(demo):
    from apps.regions.models import Modality

    us = _case(demo)
    Case.objects.filter(pk=us.pk).update(modality=Modality.objects.get(code="US"))
    case = case_route(case_id=us.pk)
    case_route(case_id=us.pk)
    assert case.assignment_state == AssignmentState.UNASSIGNED and case.assigned_to is None
    [decision] = RoutingDecision.objects.filter(case=case)
    assert decision.outcome == DecisionOutcome.REFUSED and "ultrasound" in decision.reasons[0]
    assert "nearest ultrasound referral" in decision.reasons[1] and "min" in decision.reasons[1]


def test_nobody_on_duty_alerts_the_coordinator(demo):
    from apps.rosters.models import Shift

    Shift.objects.all().delete()
    case = case_route(case_id=_case(demo, urgency="vital").pk)
    assert case.assignment_state == AssignmentState.COORDINATOR
    incident = TechnicalIncident.objects.get(case=case)
    assert incident.kind == IncidentKind.ESCALATED_TO_COORDINATOR and incident.severity == "critical"
    assert Notification.objects.filter(user=demo.users["coordinateur"], case=case, channel="in_app").exists()


def test_reconciler_routes_cases_left_unassigned(demo):
    from apps.routing.services import unassigned_reconcile

    cases = [_case(demo, n) for n in ("vierzon", "blois", "romorantin")]  # no message was consumed
    assert unassigned_reconcile() == 3
    for c in cases:
        c.refresh_from_db()
        assert c.assignment_state == AssignmentState.OFFERED
    blois = Case.objects.get(pk=cases[1].pk)
    assert blois.assigned_line.name.startswith("Ligne mutualisée Nord")
    romorantin = Case.objects.get(pk=cases[2].pk)
    assert romorantin.assigned_line.name.startswith("Ligne mutualisée Sud")
    assert unassigned_reconcile() == 0


def test_hand_back_releases_the_reading_claim(demo):
    case = case_route(case_id=_case(demo, status=CaseStatus.AWAITING_READING).pk)
    radiologue = demo.users["radiologue"]
    assignment_acknowledge(case_id=case.pk, user=radiologue)
    Case.objects.filter(pk=case.pk).update(status=CaseStatus.IN_PROGRESS, claimed_by=radiologue,
                                           claimed_at=timezone.now())
    with pytest.raises(ApplicationError, match="why"):
        assignment_hand_back(case_id=case.pk, user=radiologue, reason=" ")
    case = assignment_hand_back(case_id=case.pk, user=radiologue, reason="Fin de garde à 8h30")
    assert case.claimed_by is None and case.status == CaseStatus.AWAITING_READING
    assert case.assigned_to not in (None, radiologue)
    assert case.events.filter(kind=CaseEventKind.HANDED_BACK, actor=radiologue).exists()


def test_unread_notifications(demo):
    from apps.routing.selectors import unread_notifications
    from apps.routing.services import notification_mark_read

    case = case_route(case_id=_case(demo).pk)
    radiologue = demo.users["radiologue"]
    [n] = unread_notifications(user_id=radiologue.pk)
    assert n.case == case and "Vierzon" in n.title
    notification_mark_read(notification_id=n.pk, user=radiologue)
    assert not unread_notifications(user_id=radiologue.pk).exists()


def test_rule_with_a_target_lacking_an_agreement_is_refused(demo):
    from apps.rosters.models import OnCallLine
    from apps.routing.models import RoutingRule
    from apps.routing.services import routing_rule_save

    gie = OnCallLine.objects.create(region=demo.region, name="Ligne GIE", kind="pooled")
    gie.holders.add(demo.establishments["gie"])
    gie.modalities.add("CT", "XR")
    gie.served_sites.add(demo.establishments["gien"])
    rule = RoutingRule(region=demo.region, name="Gien → GIE", scope_kind="site", site=demo.establishments["gien"])
    with pytest.raises(ApplicationError, match="No agreement in force"):
        routing_rule_save(rule=rule, modality_codes=["CT", "XR"], line_ids=[gie.pk])
    assert not RoutingRule.objects.filter(name="Gien → GIE").exists()


def test_escalation_waits_while_the_case_waits_for_images(demo):
    case = case_route(case_id=_case(demo).pk)
    Case.objects.filter(pk=case.pk).update(status=CaseStatus.ACCEPTED)
    later = timezone.now() + dt.timedelta(hours=1)
    assert escalations_run(now=later) == 0
    Case.objects.filter(pk=case.pk).update(status=CaseStatus.AWAITING_READING)
    assert escalations_run(now=later) == 1
    case.refresh_from_db()
    assert case.escalation_level == 1 and case.assigned_to != demo.users["radiologue"]


def test_notification_pages(demo, client):
    case = case_route(case_id=_case(demo).pk)
    radiologue = demo.users["radiologue"]
    client.force_login(radiologue)
    data = client.get("/routing/notifications.json").json()
    assert data["unread"] == 1 and data["items"][0]["case_id"] == case.pk
    page = client.get("/routing/notifications/")
    assert page.status_code == 200 and "Vierzon" in page.content.decode()
    n = Notification.objects.get(user=radiologue, channel="in_app")
    client.force_login(demo.users["radio.durand1"])  # someone else cannot mark it read
    client.post(f"/routing/notifications/{n.pk}/read/")
    n.refresh_from_db()
    assert n.read_at is None
    client.force_login(radiologue)
    assert client.post(f"/routing/notifications/{n.pk}/read/").status_code == 302
    assert client.get("/routing/notifications.json").json()["unread"] == 0
