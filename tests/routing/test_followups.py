"""Issue 18, points 9 and 10: the loops that must close -- the expert opinion routed to the referral centre's
on-call line, its expert alerted, its deadline escalated to the coordinator; the critical finding call the
physician does not confirm alerts the radiologist and the coordinator."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.rosters.models import LineKind, OnCallLine, Shift
from apps.routing.followups import CRITICAL_CONFIRM_MINUTES, followups_run
from apps.routing.models import Notification
from apps.worklist import services
from apps.worklist.models import CaseEvent, CriticalFindingCall, ExpertRequest
from tests.factories.worklist import make_case

pytestmark = pytest.mark.django_db


def _neuro(demo: Any, *, expert: str | None) -> OnCallLine:
    line = OnCallLine.objects.get(kind=LineKind.REFERRAL, subspecialty="neuro")
    now = timezone.now()
    Shift.objects.filter(line=line, start__lte=now, end__gt=now).delete()  # the demo roster's own, if any
    if expert:
        Shift.objects.create(line=line, radiologist=demo.users[expert], role="expert", kind="astreinte",
                             start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=8))
    return line


def _claimed(demo: Any, **kw: Any) -> Any:
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading", **kw)
    services.case_claim(case_id=case.pk, user=demo.users["radiologue"])
    return case


def _kinds(case: Any) -> list[str]:
    return list(CaseEvent.objects.filter(case=case).order_by("pk").values_list("kind", flat=True))


def test_the_subspecialty_routes_to_the_referral_line_and_alerts_the_expert_on_duty(demo: Any) -> None:
    line = _neuro(demo, expert="radio.roux23")
    case = _claimed(demo, urgency="vital")
    before = timezone.now()
    req = services.expert_request_create(case_id=case.pk, user=demo.users["radiologue"], subspecialty="neuro",
                                         question="Dissection?")
    assert req.line == line and req.expert == demo.users["radio.roux23"] and req.subspecialty == "neuro"
    assert req.due_at is not None and dt.timedelta(minutes=29) < req.due_at - before <= dt.timedelta(minutes=31)
    alerts = Notification.objects.filter(user=demo.users["radio.roux23"], case=case, kind="expert")
    assert alerts.filter(channel="in_app").exists()
    # The request's own sub-specialty is used when none is chosen; an unknown one is refused.
    other = _claimed(demo, needed_subspecialty="neuro")
    assert services.expert_request_create(case_id=other.pk, user=demo.users["radiologue"],
                                          question="?").line == line
    with pytest.raises(ApplicationError):
        services.expert_request_create(case_id=other.pk, user=demo.users["radiologue"], subspecialty="cardiac",
                                       question="?")


def test_nobody_on_duty_on_the_referral_line_alerts_the_coordinator_at_once(demo: Any) -> None:
    _neuro(demo, expert=None)
    case = _claimed(demo)
    req = services.expert_request_create(case_id=case.pk, user=demo.users["radiologue"], subspecialty="neuro",
                                         question="Dissection?")
    assert req.expert is None
    assert Notification.objects.filter(user=demo.users["coordinateur"], case=case, kind="expert").exists()


def test_an_overdue_expert_opinion_escalates_to_the_coordinator_once(demo: Any) -> None:
    _neuro(demo, expert="radio.roux23")
    late, answered = _claimed(demo), _claimed(demo)
    reqs = [services.expert_request_create(case_id=c.pk, user=demo.users["radiologue"], subspecialty="neuro",
                                           question="?") for c in (late, answered)]
    services.expert_opinion_give(expert_request_id=reqs[1].pk, user=demo.users["radio.roux23"], opinion="Fine.")
    later = timezone.now() + dt.timedelta(hours=5)
    assert followups_run(now=later) == 1
    assert followups_run(now=later + dt.timedelta(minutes=1)) == 0  # once
    assert ExpertRequest.objects.get(pk=reqs[0].pk).escalated_at is not None
    assert ExpertRequest.objects.get(pk=reqs[1].pk).escalated_at is None
    assert _kinds(late).count("expert_overdue") == 1 and "expert_overdue" not in _kinds(answered)
    assert Notification.objects.filter(user=demo.users["coordinateur"], case=late, kind="expert_overdue").exists()
    assert not Notification.objects.filter(case=answered, kind="expert_overdue").exists()


def test_an_unconfirmed_critical_finding_call_alerts_the_radiologist_and_the_coordinator(demo: Any) -> None:
    radio = demo.users["radiologue"]
    pending, confirmed = _claimed(demo), _claimed(demo)
    calls = [services.critical_call_log(case_id=c.pk, user=radio, physician_name="Dr Fontaine")
             for c in (pending, confirmed)]
    services.critical_call_confirm(case_id=confirmed.pk, call_id=calls[1].pk, user=demo.users["urgentiste"])
    soon = timezone.now() + dt.timedelta(minutes=CRITICAL_CONFIRM_MINUTES - 5)
    assert followups_run(now=soon) == 0  # not yet due
    later = timezone.now() + dt.timedelta(minutes=CRITICAL_CONFIRM_MINUTES + 1)
    assert followups_run(now=later) == 1
    assert followups_run(now=later) == 0
    assert CriticalFindingCall.objects.get(pk=calls[0].pk).alerted_at is not None
    for user in (radio, demo.users["coordinateur"]):
        assert Notification.objects.filter(user=user, case=pending, kind="critical_unconfirmed").exists()
    assert _kinds(pending).count("critical_unconfirmed") == 1
    assert not Notification.objects.filter(case=confirmed, kind="critical_unconfirmed").exists()


def test_the_radiologist_asks_the_expert_from_the_case_page(demo: Any) -> None:
    def login(username: str) -> Client:
        client = Client()
        client.force_login(demo.users[username])
        return client

    line = _neuro(demo, expert="radio.roux23")
    case = _claimed(demo)
    radio = login("radiologue")
    page = radio.get(f"/worklist/c/{case.public_id}/").content.decode()
    assert 'name="subspecialty"' in page and "Neuroradiologie régionale" in page
    resp = radio.post(f"/worklist/c/{case.public_id}/do/expert", {"subspecialty": "neuro", "question": "Dissection?"},
                      HTTP_ACCEPT="application/json")
    assert resp.status_code == 200 and resp.json()["ok"], resp.content
    req = ExpertRequest.objects.get(case=case)
    assert req.line == line and req.expert == demo.users["radio.roux23"]
    expert_page = login("radio.roux23").get("/worklist/").content.decode()
    assert str(case.public_id) in expert_page
