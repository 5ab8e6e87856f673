"""Rest and load where they bite (issue 18, point 4): the demo roster passes its own checks, astreinte
interventions are recorded (by the radiologist from their pages, by the coordinator in the admin), count as
work and trigger rest, and routing honours the flags of a shift that breaks a rule."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.core.errors import ApplicationError, PermissionDeniedError
from apps.regions.calendar import PARIS
from apps.rosters.models import Intervention, OnCallLine, Shift
from apps.rosters.services import intervention_record, shift_violations
from apps.routing.models import RoutingDecision
from apps.routing.selectors import duty_candidates
from apps.routing.services import case_route
from tests.factories.worklist import make_case


def test_demo_roster_passes_every_rule(demo):
    shifts = list(Shift.objects.select_related("line__region", "radiologist"))
    assert shifts and not [s for s in shifts if s.flags]
    broken = {s.pk: [v.code for v in shift_violations(line=s.line, radiologist=s.radiologist, start=s.start,
                                                       end=s.end, kind=s.kind, shift_id=s.pk)] for s in shifts}
    assert {pk: codes for pk, codes in broken.items() if codes} == {}


def _night(demo):
    """Dr Durand: an astreinte last night (ended 3 h ago), then a garde on the southern pooled line that
    started an hour ago as its only primary; Dr radiologue is the backup. Without intervention, no rule is
    broken (an astreinte is not work)."""
    now = timezone.now()
    durand, radiologue = demo.users["radio.durand1"], demo.users["radiologue"]
    line = OnCallLine.objects.get(region=demo.region, name__startswith="Ligne mutualisée Sud")
    Shift.objects.filter(line=line, start__lte=now, end__gt=now).delete()
    Shift.objects.filter(radiologist=durand, end__gt=now - dt.timedelta(days=2),
                         start__lt=now + dt.timedelta(days=2)).delete()
    astreinte = Shift.objects.create(line=line, radiologist=durand, kind="astreinte", role="backup",
                                     start=now - dt.timedelta(hours=14), end=now - dt.timedelta(hours=3))
    garde = Shift.objects.create(line=line, radiologist=durand, kind="garde", role="primary",
                                 start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=10))
    Shift.objects.create(line=line, radiologist=radiologue, kind="garde", role="backup",
                         start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=10))
    assert not shift_violations(line=line, radiologist=durand, start=garde.start, end=garde.end, kind="garde",
                                shift_id=garde.pk)
    return now, line, astreinte, garde


def test_intervention_triggers_rest_and_routing_skips_the_flagged_shift(demo):
    now, line, astreinte, garde = _night(demo)
    intervention, flagged = intervention_record(
        shift_id=astreinte.pk, start=now - dt.timedelta(hours=12), end=now - dt.timedelta(hours=10),
        actor=demo.users["radio.durand1"], note="Scanner au bloc")
    assert flagged == [garde]
    garde.refresh_from_db()
    assert "rest" in {f["code"] for f in garde.flags}
    [durand] = [c for c in duty_candidates(line_ids=[line.pk], at=now)[line.pk] if c.radiologist_id == garde.radiologist_id]
    assert "rest" in durand.flags
    case = case_route(case_id=make_case(demo, urgency="urgent").pk)
    assert case.assigned_to == demo.users["radiologue"]  # the backup: the primary must rest
    assert any("breaks roster rules (rest" in r for r in RoutingDecision.objects.get(case=case).reasons)


@pytest.mark.parametrize("who,kind,hours,error", [
    ("radio.garcia2", "astreinte", (12, 10), PermissionDeniedError),   # someone else's astreinte
    ("radio.durand1", "garde", (12, 10), ApplicationError),            # a garde is work in full already
    ("radio.durand1", "astreinte", (20, 18), ApplicationError),        # before the astreinte
    ("radio.durand1", "astreinte", (10, 12), ApplicationError),        # ends before it starts
])
def test_intervention_refused(demo, who, kind, hours, error):
    now, _line, astreinte, garde = _night(demo)
    shift = astreinte if kind == "astreinte" else garde
    with pytest.raises(error):
        intervention_record(shift_id=shift.pk, start=now - dt.timedelta(hours=hours[0]),
                            end=now - dt.timedelta(hours=hours[1]), actor=demo.users[who])
    assert not Intervention.objects.exists()


def _local(t: dt.datetime) -> str:
    return t.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


def test_radiologist_records_an_intervention_from_their_page(demo, client):
    now, _line, astreinte, garde = _night(demo)
    client.force_login(demo.users["radio.durand1"])
    page = client.get("/rosters/interventions/")
    assert page.status_code == 200 and 'id="intervention-form"' in page.content.decode()
    resp = client.post("/rosters/interventions/", {
        "shift": astreinte.pk, "start": _local(now - dt.timedelta(hours=12)),
        "end": _local(now - dt.timedelta(hours=10)), "note": "AVC"}, follow=True)
    assert resp.status_code == 200
    intervention = Intervention.objects.get()
    assert intervention.recorded_by == demo.users["radio.durand1"]
    assert abs(intervention.start - (now - dt.timedelta(hours=12))) < dt.timedelta(minutes=1)
    assert "rest rule" in resp.content.decode()
    client.force_login(demo.users["urgentiste"])
    assert client.get("/rosters/interventions/").status_code == 403


def test_coordinator_records_an_intervention_in_the_admin(demo, client):
    now, _line, astreinte, garde = _night(demo)
    client.force_login(demo.users["coordinateur"])
    start, end = (now - dt.timedelta(hours=12)).astimezone(PARIS), (now - dt.timedelta(hours=10)).astimezone(PARIS)
    resp = client.post("/admin/rosters/intervention/add/", {
        "shift": astreinte.pk, "start_0": f"{start:%Y-%m-%d}", "start_1": f"{start:%H:%M:00}",
        "end_0": f"{end:%Y-%m-%d}", "end_1": f"{end:%H:%M:00}", "note": "Déplacement"})
    assert resp.status_code == 302, resp.content.decode()[:2000]
    intervention = Intervention.objects.get()
    assert intervention.recorded_by == demo.users["coordinateur"]
    garde.refresh_from_db()
    assert "rest" in {f["code"] for f in garde.flags}
    resp = client.post("/admin/rosters/intervention/add/", {
        "shift": garde.pk, "start_0": f"{start:%Y-%m-%d}", "start_1": f"{start:%H:%M:00}",
        "end_0": f"{end:%Y-%m-%d}", "end_1": f"{end:%H:%M:00}"})
    assert resp.status_code == 200 and Intervention.objects.count() == 1  # a garde has no interventions
