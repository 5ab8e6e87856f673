"""Claims: exactly one reader at a time; release, hand-off, opening a case."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, ConflictError, PermissionDeniedError
from apps.regions.selectors import agreements_in_force
from apps.worklist.models import Case, CaseEventKind, CaseStatus, Report, ReportStatus
from apps.worklist.services.common import case_event_add, require_radiologist

# --- Claim: exactly one reader -----------------------------------------------------------------------------

CLAIMABLE = (CaseStatus.ACCEPTED, CaseStatus.AWAITING_READING, CaseStatus.IN_PROGRESS)


def _employer_may_read(user: Any, case_id: int, at: Any) -> bool:
    """Agreement first, per radiologist: one of the reader's establishments is the site itself or has an
    agreement in force with it for the case's modality (a pooled line's other holders do not count)."""
    row = Case.objects.filter(pk=case_id).values_list("site_id", "modality_id").first()
    if row is None:
        return True  # the claim below finds nothing to claim
    site_id, modality = row
    partners = set(agreements_in_force(at=at).filter(requesting_id=site_id, modalities__code=modality)
                   .values_list("partner_id", flat=True)) | {site_id}
    return user.memberships.filter(establishment_id__in=partners).exists()


@transaction.atomic
def case_claim(*, case_id: int, user: Any) -> Case:
    """Lock the case to this reader. Compare-and-set on claimed_by: of two radiologists claiming at the
    same moment exactly one row update succeeds; the other is told who has the case. Refused to a reader
    whose establishment has no agreement in force with the site."""
    require_radiologist(user)
    now = timezone.now()
    if not _employer_may_read(user, case_id, now):
        raise PermissionDeniedError(_("No agreement in force between your establishment and this site: you "
                                      "cannot read its cases."), code="no_agreement")
    won = (Case.objects.filter(pk=case_id, claimed_by__isnull=True, status__in=CLAIMABLE)
           .update(claimed_by=user, claimed_at=now, status=CaseStatus.IN_PROGRESS, updated_at=now))
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
