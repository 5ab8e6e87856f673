"""Claims: exactly one reader at a time; release, hand-off, opening a case."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, ConflictError, NotFoundError, PermissionDeniedError
from apps.regions.calendar import pds_kind_at
from apps.regions.selectors import agreements_in_force, site_calendar_spec
from apps.worklist.models import AssignmentState, Case, CaseEventKind, CaseStatus, Report, ReportStatus
from apps.worklist.services.common import case_event_add, require_radiologist

# --- Claim: exactly one reader -----------------------------------------------------------------------------

CLAIMABLE = (CaseStatus.ACCEPTED, CaseStatus.AWAITING_READING, CaseStatus.IN_PROGRESS)


def _employer_may_read(user: Any, case_id: int, at: Any) -> bool:
    """Agreement first, per radiologist: one of the reader's establishments is the site itself or has an
    agreement in force with it for the case's modality (a pooled line's other holders do not count); an
    agreement restricted to PDS hours counts only during the site's PDS periods."""
    case = Case.objects.filter(pk=case_id).select_related("site__territory__region").first()
    if case is None:
        return True  # the claim below finds nothing to claim
    mine = set(user.memberships.values_list("establishment_id", flat=True))
    if case.site_id in mine:
        return True
    agreed = dict(agreements_in_force(at=at).filter(requesting_id=case.site_id, modalities__code=case.modality_id,
                                                    partner_id__in=mine).values_list("partner_id", "pds_only"))
    if not agreed:
        return False
    if not all(agreed.values()):
        return True
    return pds_kind_at(at, site_calendar_spec(case.site)) is not None  # only PDS-hours agreements


@transaction.atomic
def case_claim(*, case_id: int, user: Any) -> Case:
    """Lock the case to this reader. Compare-and-set on claimed_by: of two radiologists claiming at the
    same moment exactly one row update succeeds; the other is told who has the case. Refused to a reader
    whose establishment has no agreement in force with the site. A case waiting in a private provider's
    queue becomes the claimer's assignment (acknowledged), which ends its SLA clock."""
    require_radiologist(user)
    now = timezone.now()
    if not _employer_may_read(user, case_id, now):
        raise PermissionDeniedError(_("No agreement in force between your establishment and this site: you "
                                      "cannot read its cases."), code="no_agreement")
    won = (Case.objects.filter(pk=case_id, claimed_by__isnull=True, status__in=CLAIMABLE)
           .update(claimed_by=user, claimed_at=now, status=CaseStatus.IN_PROGRESS, updated_at=now))
    if won:
        # Taken from a private provider's queue: the claimer's from now on, within the SLA (no escalation).
        Case.objects.filter(pk=case_id, assignment_state=AssignmentState.QUEUED).update(
            assignment_state=AssignmentState.ACKNOWLEDGED, assigned_to=user, assigned_at=now, acknowledged_at=now,
            escalation_due_at=None)
    case = Case.objects.select_related("claimed_by").get(pk=case_id)
    if not won:
        if case.claimed_by_id == user.pk:
            return case
        if case.claimed_by is not None:
            raise ConflictError(_("Already claimed by %(who)s.") % {"who": case.claimed_by.display_name},
                                code="already_claimed",
                                extra={"claimed_by": case.claimed_by.display_name})
        raise ConflictError(_("This case cannot be claimed in its current state."), code="not_claimable")
    audit_record(action="claim", obj=case, patient_data=True, establishment_id=case.site_id)
    case_event_add(case=case, kind=CaseEventKind.CLAIMED, actor_id=user.pk,
                   message=f"Claimed by {user.display_name}", at=now)
    return case


@transaction.atomic
def case_release(*, case_id: int, user: Any, reason: str = "") -> Case:
    now = timezone.now()
    released = (Case.objects.filter(pk=case_id, claimed_by=user, status=CaseStatus.IN_PROGRESS)
                .update(claimed_by=None, claimed_at=None, status=CaseStatus.AWAITING_READING, updated_at=now))
    case = Case.objects.get(pk=case_id)
    if not released:
        raise ConflictError(_("You do not hold this case."), code="not_holder")
    audit_record(action="release", obj=case, patient_data=True, establishment_id=case.site_id)
    case_event_add(case=case, kind=CaseEventKind.RELEASED, actor_id=user.pk,
                   message="Released" + (f": {reason.strip()}" if reason.strip() else ""), at=now)
    return case


@transaction.atomic
def case_hand_off(*, case_id: int, user: Any, to_user_id: int, note: str = "") -> Case:
    """End of shift: pass a claimed case (with its draft) to the next reader."""
    to_user = User.objects.filter(pk=to_user_id, role="radiologist", is_active=True).first()
    if to_user is None or to_user.pk == user.pk:
        raise ApplicationError(_("Choose another radiologist."), code="bad_handoff_target")
    now = timezone.now()
    moved = (Case.objects.filter(pk=case_id, claimed_by=user, status=CaseStatus.IN_PROGRESS)
             .update(claimed_by=to_user, claimed_at=now, assigned_to=to_user, updated_at=now))
    case = Case.objects.get(pk=case_id)
    if not moved:
        raise ConflictError(_("You do not hold this case."), code="not_holder")
    Report.objects.filter(case=case, status=ReportStatus.DRAFT).update(author=to_user)
    audit_record(action="hand_off", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"to": to_user.pk})
    case_event_add(case=case, kind=CaseEventKind.RELEASED, actor_id=user.pk,
                   message=f"Handed off to {to_user.display_name}" + (f": {note.strip()}" if note.strip() else ""),
                   data={"to_user": to_user.pk}, at=now)
    return case


def case_open(*, case: Case, user: Any) -> None:
    """First opening by the reader: a stage timestamp."""
    if case.opened_at is None and case.claimed_by_id == user.pk:
        now = timezone.now()
        if Case.objects.filter(pk=case.pk, opened_at__isnull=True).update(opened_at=now):
            case.opened_at = now
            case_event_add(case=case, kind=CaseEventKind.OPENED, actor_id=user.pk, message="Images opened", at=now)


def provider_case_claim(*, case_id: int, establishment_id: int, rpps: str) -> Case:
    """A private provider's own system takes a case from its queue for one of its radiologists, named by RPPS
    number (the provider dispatches internally): the claim is that radiologist's, with every rule of
    ``case_claim`` (agreement first, one reader)."""
    who = (User.objects.filter(role="radiologist", is_active=True, rpps=rpps,
                               memberships__establishment_id=establishment_id).first() if rpps else None)
    if who is None:
        raise NotFoundError(_("No active radiologist of your establishment has this RPPS number."),
                               code="unknown_radiologist")
    return case_claim(case_id=case_id, user=who)
