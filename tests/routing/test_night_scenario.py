"""A night on the demo region (issue 18, "done when"): an expired agreement, a radiologist who never answers
and an assignment by the coordinator all happen, and every case ends assigned and reported."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from apps.regions.models import Agreement, AgreementStatus
from apps.rosters.models import OnCallLine, Shift
from apps.routing.coordinator import case_assign_by_coordinator
from apps.routing.models import RoutingDecision
from apps.routing.services import assignment_acknowledge, case_route, escalations_run
from apps.worklist import services as wl
from apps.worklist.models import AssignmentState, Case, CaseStatus
from tests.factories.worklist import make_case


def _read_and_sign(case: Case, reader) -> Case:
    assignment_acknowledge(case_id=case.pk, user=reader)
    wl.case_claim(case_id=case.pk, user=reader)
    wl.report_draft_save(case_id=case.pk, user=reader, fields={"indication": "Céphalées", "findings": "RAS",
                                                               "conclusion": "Pas d'anomalie."})
    wl.report_sign(case_id=case.pk, user=reader)
    case.refresh_from_db()
    return case


def test_a_night_with_an_expired_agreement_a_silent_radiologist_and_the_coordinator(demo):
    users, now = demo.users, timezone.now()
    # 1. Bourges's agreement with Vierzon expired yesterday; tonight the southern pool is held by a Bourges
    #    radiologist (primary) and Dr Durand of Tours (backup), who will never answer.
    Agreement.objects.filter(requesting=demo.establishments["vierzon"], partner=demo.establishments["bourges"]) \
        .update(status=AgreementStatus.EXPIRED, valid_until=now.date() - dt.timedelta(days=1))
    south = OnCallLine.objects.get(region=demo.region, name__startswith="Ligne mutualisée Sud")
    Shift.objects.filter(line=south, end__gt=now - dt.timedelta(hours=1)).delete()
    for username, role in (("radio.vincent6", "primary"), ("radio.durand1", "backup")):
        Shift.objects.create(line=south, radiologist=users[username], role=role, kind="garde",
                             start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=12))
    ct = make_case(demo, urgency="urgent", status=CaseStatus.AWAITING_READING)
    mr = make_case(demo, modality_code="MR", exam="IRM cérébrale", urgency="urgent",
                   status=CaseStatus.AWAITING_READING, patient_birth_name="MARTIN")
    for case in (ct, mr):
        case = case_route(case_id=case.pk)
        assert case.assigned_to == users["radio.durand1"]  # never the Bourges radiologist
    # 2. Dr Durand never answers: the CT goes on to the private provider, the MR (the provider reads CT only)
    #    to the coordinator, with every reason.
    escalations_run(now=now + dt.timedelta(minutes=16))
    ct.refresh_from_db()
    mr.refresh_from_db()
    assert ct.assignment_state == AssignmentState.OFFERED and ct.assigned_line.kind == "provider"
    assert mr.assignment_state == AssignmentState.COORDINATOR
    reasons = RoutingDecision.objects.filter(case=mr).order_by("-attempt").first().reasons
    assert any("no agreement in force between" in r for r in reasons)
    assert any("does not cover this modality" in r for r in reasons)
    # 3. The coordinator gives the MR to Dr radiologue (Tours, agreement in force), not on duty tonight.
    mr = case_assign_by_coordinator(case_id=mr.pk, radiologist_id=users["radiologue"].pk,
                                    reason="Joignable, accepte de lire l'IRM", actor=users["coordinateur"])
    # 4. Both are read and signed.
    ct = _read_and_sign(ct, ct.assigned_to)
    mr = _read_and_sign(mr, users["radiologue"])
    for case in (ct, mr):
        assert case.status == CaseStatus.REPORTED and case.assigned_to is not None
        assert case.assigned_to != users["radio.vincent6"]
    assert not Case.objects.filter(pk__in=[ct.pk, mr.pk], assignment_state=AssignmentState.COORDINATOR).exists()
