from __future__ import annotations

from typing import Any

import pytest

from apps.audit.models import AuditEntry
from apps.core.errors import ApplicationError, ConflictError, PermissionDeniedError
from apps.worklist import services
from apps.worklist.models import Case, CaseStatus, ExpertRequestStatus, Report, ReportStatus
from tests.factories.worklist import make_case


def _claimed(demo: Any, user: str = "radiologue", **kw: Any) -> Case:
    case = make_case(demo, assign_to=user, status="awaiting_reading", **kw)
    return services.case_claim(case_id=case.pk, user=demo.users[user])


def _write(case: Case, user: Any, **extra: Any) -> Report:
    return services.report_draft_save(case_id=case.pk, user=user, fields={
        "indication": "Fall", "technique": "Non-contrast CT", "findings": "No bleed.",
        "conclusion": "No intracranial haemorrhage."}, **extra)


@pytest.mark.django_db
def test_claim_tells_the_loser_who_has_the_case(demo: Any) -> None:
    case = _claimed(demo)
    assert case.claimed_by == demo.users["radiologue"] and case.status == CaseStatus.IN_PROGRESS
    with pytest.raises(ConflictError) as exc:
        services.case_claim(case_id=case.pk, user=demo.users["radio.durand1"])
    assert "Claire Martin" in exc.value.message
    # Claiming again is harmless for the holder; release lets the other one claim.
    services.case_claim(case_id=case.pk, user=demo.users["radiologue"])
    services.case_release(case_id=case.pk, user=demo.users["radiologue"])
    assert services.case_claim(case_id=case.pk, user=demo.users["radio.durand1"]).claimed_by == demo.users["radio.durand1"]
    assert list(case.events.values_list("kind", flat=True))[-3:] == ["claimed", "released", "claimed"]
    # The report needs the claim; an addendum needs a signed report.
    with pytest.raises(PermissionDeniedError):
        _write(case, demo.users["radiologue"])
    with pytest.raises(ConflictError):
        services.addendum_add(case_id=case.pk, user=demo.users["radio.durand1"], text="x")


@pytest.mark.django_db
def test_signed_report_is_immutable_and_corrected_by_addenda(demo: Any) -> None:
    me = demo.users["radiologue"]
    case = _claimed(demo)
    _write(case, me)
    report = services.report_sign(case_id=case.pk, user=me)
    assert report.status == ReportStatus.SIGNED and len(report.content_sha256) == 64
    assert report.content_sha256 == services.report_content_hash(report)
    case.refresh_from_db()
    assert case.status == CaseStatus.REPORTED and case.signed_at is not None
    with pytest.raises(ConflictError):
        _write(case, me)
    with pytest.raises(ConflictError):
        services.report_sign(case_id=case.pk, user=me)
    report.refresh_from_db()
    assert report.conclusion == "No intracranial haemorrhage."
    add = services.addendum_add(case_id=case.pk, user=me, text="Small right frontal contusion seen on re-reading.")
    assert add.signed_at and add.author == me
    assert report.addenda.count() == 1
    assert AuditEntry.objects.filter(action="report_sign", object_id=str(case.pk), patient_data=True).exists()


@pytest.mark.django_db
def test_critical_finding_requires_a_logged_call_before_signature(demo: Any) -> None:
    me = demo.users["radiologue"]
    case = _claimed(demo)
    _write(case, me, critical_finding=True)
    with pytest.raises(ApplicationError) as exc:
        services.report_sign(case_id=case.pk, user=me)
    assert exc.value.code == "critical_call_required"
    call = services.critical_call_log(case_id=case.pk, user=me, physician_name="Dr Lucie Fontaine", acknowledged=True)
    assert call.called_by == me and call.acknowledged
    assert services.report_sign(case_id=case.pk, user=me).critical_finding is True
    assert list(case.events.values_list("kind", flat=True))[-2:] == ["critical_call", "report_signed"]


@pytest.mark.django_db
def test_hand_off_passes_the_claim_and_the_draft(demo: Any) -> None:
    me, next_one = demo.users["radiologue"], demo.users["radio.durand1"]
    case = _claimed(demo)
    _write(case, me)
    services.case_hand_off(case_id=case.pk, user=me, to_user_id=next_one.pk, note="end of shift")
    case.refresh_from_db()
    assert case.claimed_by == next_one and Report.objects.get(case=case).author == next_one
    with pytest.raises(ConflictError):
        services.case_release(case_id=case.pk, user=me)


@pytest.mark.django_db
def test_expert_request_goes_to_the_referral_line_and_the_opinion_is_attached(demo: Any) -> None:
    from apps.rosters.models import LineKind, OnCallLine

    line = OnCallLine.objects.filter(kind=LineKind.REFERRAL).first()
    if line is None:
        line = OnCallLine.objects.create(region=demo.region, name="Neuro test", kind=LineKind.REFERRAL,
                                         subspecialty="neuro")
    me, expert = demo.users["radiologue"], demo.users["radio.roux23"]
    case = _claimed(demo)
    req = services.expert_request_create(case_id=case.pk, user=me, line_id=line.pk, question="Dissection?")
    assert req.line == line and req.status == ExpertRequestStatus.OPEN
    if req.expert_id is None:  # nobody on duty on that line right now: any expert of the line may answer
        assert req.expert is None
    else:
        expert = req.expert
    answered = services.expert_opinion_give(expert_request_id=req.pk, user=expert, opinion="No dissection.")
    assert answered.status == ExpertRequestStatus.ANSWERED and answered.expert == expert
    assert list(case.events.values_list("kind", flat=True))[-2:] == ["expert_requested", "expert_answered"]
    with pytest.raises(ApplicationError):
        services.expert_request_create(case_id=case.pk, user=me, line_id=line.pk, question=" ")


@pytest.mark.django_db
def test_refusal_needs_a_reason_and_is_final(demo: Any) -> None:
    case = make_case(demo)
    with pytest.raises(ApplicationError):
        services.case_validate(case_id=case.pk, user=demo.users["radiologue"], decision="refuse")
    services.case_validate(case_id=case.pk, user=demo.users["radiologue"], decision="refuse",
                           reason="Ultrasound first")
    with pytest.raises(ConflictError):
        services.case_validate(case_id=case.pk, user=demo.users["radiologue"], decision="accept", protocol="x")
