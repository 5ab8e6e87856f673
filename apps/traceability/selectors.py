"""Reads for the tele-act record: one document per interpretation, built from the case and its acts.

The document is plain JSON-able data (dicts, lists, ISO-8601 UTC strings) so that the same content is
frozen in ``TeleActRecord.snapshot`` and rendered as JSON, PDF and a FHIR bundle. When the patient opposes
data sharing, ``teleact_record_build(..., for_export=True)`` leaves the identity out and says so.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_noop

from apps.traceability.models import TechnicalIncident, TeleActRecord
from apps.worklist.models import (
    Addendum,
    CaseEvent,
    CriticalFindingCall,
    ExpertRequest,
    Report,
    ReportReceipt,
)
from apps.worklist.priors.selectors import priors_retrieval_asked
from apps.worklist.selectors import cases_visible_to

RECORD_VERSION = 1
# Stored in English in the record (its JSON is for machines); translated when shown (apps.traceability.labels).
IDENTITY_WITHHELD = gettext_noop("Patient identity withheld: the patient opposes the sharing of their data "
                                 "(opposition recorded on the request).")
NO_OPPOSITION = gettext_noop("No opposition to data sharing recorded.")


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _person(user: Any, role: str) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"role": role, "user_id": user.pk, "name": user.display_name, "rpps": user.rpps or None,
            "profile": user.role}


def incidents_for_case(case: Any) -> QuerySet[TechnicalIncident]:
    return (TechnicalIncident.objects.filter(Q(case_id=case.pk) | Q(study__case_id=case.pk))
            .select_related("reported_by").order_by("at", "pk"))


def teleact_record_for(case_id: int) -> TeleActRecord | None:
    return TeleActRecord.objects.filter(case_id=case_id).first()


def teleact_record_build(case: Any, *, for_export: bool = True) -> dict[str, Any]:
    """The record of ``case`` (a worklist.Case): report, acts, professionals, times and incidents."""
    report = (Report.objects.select_related("author", "signed_by").filter(case_id=case.pk).first())
    addenda = list(Addendum.objects.select_related("author").filter(report__case_id=case.pk).order_by("signed_at"))
    experts = list(ExpertRequest.objects.select_related("requested_by", "expert", "line")
                   .filter(case_id=case.pk).order_by("requested_at"))
    calls = list(CriticalFindingCall.objects.select_related("called_by", "confirmed_by").filter(case_id=case.pk)
                 .order_by("called_at"))
    receipts = list(ReportReceipt.objects.select_related("reader").filter(case_id=case.pk).order_by("at", "pk"))
    priors = list(priors_retrieval_asked(case.pk))
    events = list(CaseEvent.objects.select_related("actor").filter(case_id=case.pk).order_by("at", "pk"))

    acts: list[dict[str, Any]] = []

    def act(kind: str, at: dt.datetime | None, user: Any, label: str, **extra: Any) -> None:
        if at is None:
            return
        acts.append({"act": kind, "label": label, "at": _iso(at),
                     "by": _person(user, kind) if user is not None else None, **extra})

    act("request", case.requested_at, case.requested_by, "Interpretation requested",
        clinical_question=case.clinical_question, urgency=case.urgency, exam=case.exam)
    if case.validated_at:
        act("validation", case.validated_at, case.validated_by, "Indication validated, protocol set",
            protocol=case.protocol)
    act("acquisition", case.acquired_at, case.radiographer, "Acquisition performed by the radiographer")
    act("images_complete", case.images_complete_at, case.radiographer, "Images acquired and complete")
    act("assignment", case.assigned_at, case.assigned_to, "Assigned to the on-call radiologist",
        line=case.assigned_line.name if case.assigned_line_id and case.assigned_line else None)
    act("acknowledgement", case.acknowledged_at, case.assigned_to, "Acknowledged by the radiologist")
    act("reading", case.claimed_at or case.opened_at, case.claimed_by, "Reading started")
    for e in experts:
        act("expert_request", e.requested_at, e.requested_by, "Expert opinion requested", question=e.question,
            line=e.line.name)
        if e.answered_at:
            act("expert_opinion", e.answered_at, e.expert, "Expert opinion given", opinion=e.opinion)
    if report is not None and report.signed_at:
        act("report_signed", report.signed_at, report.signed_by or report.author, "Report signed")
    for c in calls:
        act("critical_finding_call", c.called_at, c.called_by, "Critical finding called to the physician",
            physician_reached=c.physician_name, acknowledged=c.acknowledged,
            confirmed_at=_iso(c.confirmed_at))
        act("critical_finding_confirmed", c.confirmed_at, c.confirmed_by,
            "Critical finding call confirmed by the physician", physician_reached=c.physician_name)
    for a in addenda:
        act("addendum", a.signed_at, a.author, "Addendum signed", text=a.text)
    first = receipts[0] if receipts else None
    act("delivery", case.delivered_at, first.reader if first else None, "Report delivered to the requesting site",
        channel=first.channel if first else None, recipient=first.reader_label if first else None)
    for r in receipts:
        if r.reader is not None:
            act("report_read", r.at, r.reader, "Report read at the requesting site", channel=r.channel)
    for pr in priors:  # a prior retrieved from the site PACS was at hand for the reading
        act("prior_retrieved", pr.retrieved_at if pr.state == "retrieved" else None, pr.requested_by,
            "Prior study retrieved from the site PACS", study_uid=pr.study_uid, automatic=pr.automatic)
    acts.sort(key=lambda x: x["at"])

    people: dict[tuple[int, str], dict[str, Any]] = {}
    for role, user in [("requesting_physician", case.requested_by), ("radiographer", case.radiographer),
                       ("validating_radiologist", case.validated_by), ("assigned_radiologist", case.assigned_to),
                       ("reading_radiologist", case.claimed_by),
                       ("report_author", report.author if report else None),
                       ("report_signatory", report.signed_by if report else None)]:
        if user is not None:
            people.setdefault((user.pk, role), _person(user, role))  # type: ignore[arg-type]
    for e in experts:
        if e.expert is not None:
            people.setdefault((e.expert.pk, "expert"), _person(e.expert, "expert"))  # type: ignore[arg-type]
    for a in addenda:
        people.setdefault((a.author.pk, "addendum_author"), _person(a.author, "addendum_author"))  # type: ignore
    for c in calls:
        people.setdefault((c.called_by.pk, "critical_call"), _person(c.called_by, "critical_call"))  # type: ignore
        if c.confirmed_by is not None:
            people.setdefault((c.confirmed_by.pk, "critical_confirmation"),
                              _person(c.confirmed_by, "critical_confirmation"))  # type: ignore[arg-type]
    for r in receipts:
        if r.reader is not None:
            people.setdefault((r.reader.pk, "report_reader"), _person(r.reader, "report_reader"))  # type: ignore

    withheld = for_export and case.opposes_data_sharing
    if withheld:
        patient: dict[str, Any] = {"withheld": True, "statement": IDENTITY_WITHHELD}
    else:
        patient = {"withheld": False, "birth_name": case.patient_birth_name, "used_name": case.patient_used_name,
                   "first_names": case.patient_first_names, "sex": case.patient_sex,
                   "birth_date": _iso(case.patient_birth_date), "birth_place": case.patient_birth_place,
                   "ins": case.patient_ins, "local_patient_id": case.local_patient_id}

    site = case.site
    return {
        "record_version": RECORD_VERSION,
        "case": {"id": case.pk, "public_id": str(case.public_id), "origin": case.origin, "status": case.status,
                 "modality": case.modality_id, "exam": case.exam, "urgency": case.urgency,
                 "accession_number": case.accession_number,
                 "requesting_site": {"id": site.pk, "name": site.name, "finess": site.finess}},
        "patient": patient,
        "consent": {"patient_informed": case.patient_informed, "opposes_telemedicine": case.opposes_telemedicine,
                    "opposes_data_sharing": case.opposes_data_sharing,
                    "statement": IDENTITY_WITHHELD if case.opposes_data_sharing else NO_OPPOSITION},
        "report": None if report is None else {
            "status": report.status, "indication": report.indication, "technique": report.technique,
            "findings": report.findings, "conclusion": report.conclusion,
            "critical_finding": report.critical_finding, "signed_at": _iso(report.signed_at),
            "signed_by": _person(report.signed_by or report.author, "report_signatory"),
            "content_sha256": report.content_sha256,
            "addenda": [{"at": _iso(a.signed_at), "by": _person(a.author, "addendum_author"), "text": a.text}
                        for a in addenda]},
        "acts": acts,
        "professionals": list(people.values()),
        "priors": [{"study_uid": pr.study_uid, "study_at": _iso(pr.study_datetime), "modalities": pr.modalities,
                    "description": pr.description, "accession_number": pr.accession_number, "state": pr.state,
                    "automatic": pr.automatic,
                    "requested_by": pr.requested_by.display_name if pr.requested_by else None,
                    "requested_at": _iso(pr.requested_at), "retrieved_at": _iso(pr.retrieved_at)}
                   for pr in priors],
        "timeline": [{"at": _iso(e.at), "kind": e.kind, "message": e.message,
                      "actor": e.actor.display_name if e.actor else None} for e in events],
        "incidents": [{"at": _iso(i.at), "kind": i.kind, "label": str(i.get_kind_display()),
                       "severity": i.severity, "source": i.source, "summary": i.summary,
                       "resolved_at": _iso(i.resolved_at),
                       "reported_by": i.reported_by.display_name if i.reported_by else None}
                      for i in incidents_for_case(case)],
    }


def case_for_record(*, user: Any, public_id: Any) -> Any:
    """The case if ``user`` may read its tele-act record, else None: exactly the cases the user may see
    (``apps.worklist.selectors.cases_visible_to``, the one case-visibility rule)."""
    return (cases_visible_to(user)
            .select_related("site__territory", "requested_by", "radiographer", "validated_by", "assigned_to",
                            "claimed_by", "assigned_line", "modality")
            .filter(public_id=public_id).first())
