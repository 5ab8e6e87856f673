"""The report: draft, signature, addenda, critical finding calls."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, ConflictError, PermissionDeniedError
from apps.worklist.models import (
    Addendum,
    Case,
    CaseEventKind,
    CaseStatus,
    CriticalFindingCall,
    Report,
    ReportStatus,
)
from apps.worklist.services.common import case_event_add, lock_case, require_radiologist

# --- Report ---------------------------------------------------------------------------------------------

REPORT_FIELDS = ("indication", "technique", "findings", "conclusion")


def report_content_hash(report: Report) -> str:
    payload = {f: getattr(report, f) for f in REPORT_FIELDS}
    payload.update({"critical_finding": report.critical_finding, "case": str(report.case.public_id),
                    "signed_by": report.signed_by_id, "signed_at": report.signed_at.isoformat() if report.signed_at else ""})
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _require_reader(case: Case, user: Any) -> None:
    if case.claimed_by_id != user.pk:
        raise PermissionDeniedError(_("Claim the case before writing its report."), code="not_claimed")


@transaction.atomic
def report_draft_save(*, case_id: int, user: Any, fields: dict[str, str], template: str = "",
                      critical_finding: bool | None = None) -> Report:
    """Autosave of the draft; a signed report is never changed (compare-and-set on its status)."""
    case = lock_case(case_id)
    _require_reader(case, user)
    report = Report.objects.filter(case=case).first()
    if report is None:
        report = Report.objects.create(case=case, author=user, template=template)
    if report.status != ReportStatus.DRAFT:
        raise ConflictError(_("The report is signed: write an addendum."), code="report_signed")
    updates: dict[str, Any] = {f: fields[f] for f in REPORT_FIELDS if f in fields}
    if template:
        updates["template"] = template
    if critical_finding is not None:
        updates["critical_finding"] = critical_finding
    updates["draft_saved_at"] = timezone.now()
    if not Report.objects.filter(pk=report.pk, status=ReportStatus.DRAFT).update(**updates):
        raise ConflictError(_("The report is signed: write an addendum."), code="report_signed")
    report.refresh_from_db()
    audit_record(action="report_draft", obj=case, patient_data=True, establishment_id=case.site_id)
    return report


@transaction.atomic
def report_sign(*, case_id: int, user: Any) -> Report:
    """Sign: the content is frozen and hashed, the case is reported. A critical finding needs the call to
    the physician logged first."""
    case = lock_case(case_id)
    _require_reader(case, user)
    report = Report.objects.select_for_update(of=("self",)).filter(case=case).first()  # case, then report
    if report is None:
        raise ApplicationError(_("Write the report before signing it."), code="no_report")
    if report.status != ReportStatus.DRAFT:
        raise ConflictError(_("The report is already signed."), code="report_signed")
    if not report.conclusion.strip():
        raise ApplicationError(_("The conclusion is required to sign."), code="conclusion_required")
    if report.critical_finding and not case.critical_calls.exists():
        raise ApplicationError(_("Critical finding: log your call to the requesting physician before signing."),
                               code="critical_call_required")
    now = timezone.now()
    report.status, report.signed_at, report.signed_by = ReportStatus.SIGNED, now, user
    report.content_sha256 = report_content_hash(report)
    report.save(update_fields=["status", "signed_at", "signed_by", "content_sha256"])
    case.status, case.signed_at = CaseStatus.REPORTED, now
    case.save(update_fields=["status", "signed_at", "updated_at"])
    audit_record(action="report_sign", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"sha256": report.content_sha256})
    case_event_add(case=case, kind=CaseEventKind.REPORT_SIGNED, actor_id=user.pk,
                   message=f"Report signed by {user.display_name}" + (" (critical finding)" if report.critical_finding else ""),
                   data={"sha256": report.content_sha256}, at=now)
    return report


@transaction.atomic
def addendum_add(*, case_id: int, user: Any, text: str) -> Addendum:
    """Correction of a signed report: a new signed, timestamped text; the report itself never changes."""
    require_radiologist(user)
    case = lock_case(case_id)
    report = Report.objects.filter(case=case, status=ReportStatus.SIGNED).first()
    if report is None:
        raise ConflictError(_("Addenda are for signed reports; edit the draft instead."), code="not_signed")
    if not text.strip():
        raise ApplicationError(_("Write the addendum."), code="text_required")
    addendum = Addendum.objects.create(report=report, text=text.strip(), author=user, signed_at=timezone.now())
    audit_record(action="addendum", obj=case, patient_data=True, establishment_id=case.site_id)
    case_event_add(case=case, kind=CaseEventKind.ADDENDUM, actor_id=user.pk,
                   message=f"Addendum signed by {user.display_name}")
    return addendum


@transaction.atomic
def critical_call_log(*, case_id: int, user: Any, physician_name: str, called_at: dt.datetime | None = None,
                      acknowledged: bool = False, note: str = "") -> CriticalFindingCall:
    require_radiologist(user)
    case = lock_case(case_id)
    if not physician_name.strip():
        raise ApplicationError(_("Name the physician you reached."), code="physician_required")
    call = CriticalFindingCall.objects.create(case=case, called_by=user, physician_name=physician_name.strip(),
                                              called_at=called_at or timezone.now(), acknowledged=acknowledged,
                                              note=note.strip())
    audit_record(action="critical_call", obj=case, patient_data=True, establishment_id=case.site_id)
    case_event_add(case=case, kind=CaseEventKind.CRITICAL_CALL, actor_id=user.pk,
                   message=f"Critical finding call to {call.physician_name}"
                           + (" (acknowledged)" if acknowledged else " (not acknowledged)"))
    return call
