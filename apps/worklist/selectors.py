"""Reads on cases, scoped to the user who asks.

Invariant: every queryset handed to a view starts from ``cases_visible_to(user)``;
a case outside it does not exist for that user (the views answer 404), so a
guessed URL never leaks another establishment's patient.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Case as When_
from django.db.models import IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.worklist.models import (
    OPEN_STATUSES,
    Case,
    CaseStatus,
    ExpertRequest,
    ExpertRequestStatus,
    Origin,
    Urgency,
)

SITE_ROLES = {"emergency_physician", "radiographer", "establishment_admin"}


def user_line_ids(user: Any, *, at: dt.datetime | None = None) -> list[int]:
    """The on-call lines a radiologist holds now (the routing engine's answer)."""
    from apps.routing.selectors import lines_for_user

    return list(lines_for_user(user_id=user.pk, at=at or timezone.now()).values_list("pk", flat=True))


def user_establishment_ids(user: Any) -> list[int]:
    return list(user.memberships.values_list("establishment_id", flat=True))


def cases_visible_to(user: Any) -> QuerySet[Case]:
    """Scoping by role: site staff see their establishments' cases; a radiologist the cases assigned to
    them, claimed by them, on their lines, validated or reported by them, or sent to them for an expert
    opinion; a coordinator the cases of their region."""
    qs = Case.objects.all()
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    role = getattr(user, "role", "")
    if role in SITE_ROLES:
        return qs.filter(site_id__in=user_establishment_ids(user))
    if role == "radiologist":
        lines = user_line_ids(user)
        return qs.filter(
            Q(assigned_to=user) | Q(claimed_by=user) | Q(assigned_line_id__in=lines) | Q(validated_by=user)
            | Q(report__author=user) | Q(expert_requests__expert=user) | Q(expert_requests__line_id__in=lines)
        ).distinct()
    if role == "ars_coordinator" and user.region_id:
        return qs.filter(site__territory__region_id=user.region_id)
    return qs.none()


def case_get_for_user(*, user: Any, public_id: Any) -> Case:
    """The case if the user may see it; Case.DoesNotExist otherwise (the view turns it into 404)."""
    return (cases_visible_to(user)
            .select_related("site", "modality", "requested_by", "assigned_to", "assigned_line", "claimed_by",
                            "validated_by")
            .get(public_id=public_id))


def _urgency_rank() -> When_:
    return When_(When(urgency=Urgency.VITAL, then=Value(0)), When(urgency=Urgency.URGENT, then=Value(1)),
                 default=Value(2), output_field=IntegerField())


def radiologist_worklist(*, user: Any, modality_code: str = "", site_id: int | None = None) -> QuerySet[Case]:
    """Open cases of the radiologist's night, most urgent first, then longest waiting."""
    qs = (cases_visible_to(user).filter(status__in=OPEN_STATUSES)
          .select_related("site", "modality", "claimed_by", "assigned_to", "assigned_line")
          .annotate(urgency_rank=_urgency_rank(), waiting_since=Coalesce("images_complete_at", "requested_at"))
          .order_by("urgency_rank", "waiting_since", "pk"))
    if modality_code:
        qs = qs.filter(modality_id=modality_code)
    if site_id:
        qs = qs.filter(site_id=site_id)
    return qs


def expert_requests_for(user: Any) -> QuerySet[ExpertRequest]:
    return (ExpertRequest.objects.filter(status=ExpertRequestStatus.OPEN)
            .filter(Q(expert=user) | Q(line_id__in=user_line_ids(user)))
            .select_related("case", "case__site", "case__modality", "requested_by", "line"))


def site_requests(*, user: Any, now: dt.datetime | None = None, hours: int = 24) -> QuerySet[Case]:
    """Tonight's requests of the user's site(s): the last ``hours`` hours, plus anything still open."""
    now = now or timezone.now()
    return (cases_visible_to(user)
            .filter(Q(requested_at__gte=now - dt.timedelta(hours=hours)) | Q(status__in=OPEN_STATUSES))
            .select_related("site", "modality", "requested_by", "assigned_to", "claimed_by")
            .annotate(urgency_rank=_urgency_rank())
            .order_by("-requested_at"))


def unmatched_studies(*, user: Any) -> QuerySet[Any]:
    """Studies of the user's site(s) with no request: not attached, or attached to a case that the gateway
    created for them (origin 'dicom') which is still open."""
    from apps.studies.models import Study

    return (Study.objects.filter(site_id__in=user_establishment_ids(user), ultrasound=False)
            .filter(Q(case__isnull=True) | Q(case__origin=Origin.DICOM, case__status__in=OPEN_STATUSES))
            .select_related("case", "site").order_by("-last_received_at"))


def requests_awaiting_images(*, user: Any) -> QuerySet[Case]:
    return (cases_visible_to(user)
            .filter(status__in=[CaseStatus.AWAITING_VALIDATION, CaseStatus.INFO_REQUESTED, CaseStatus.ACCEPTED],
                    studies__isnull=True)
            .exclude(origin=Origin.DICOM).select_related("modality").order_by("-requested_at"))


@dataclass(frozen=True)
class OnDutyContact:
    name: str
    phone: str
    line_name: str


def on_duty_contact(case: Case, *, at: dt.datetime | None = None) -> OnDutyContact | None:
    """Whom the site calls about this case: the routing engine's on-duty radiologist, else whoever has the
    case, else the line's phone."""
    from apps.routing.selectors import on_duty

    try:
        duties = on_duty(site_id=case.site_id, modality_code=case.modality_id, at=at or timezone.now())
    except Exception:  # the status page must render even if routing has no answer tonight
        duties = []
    if duties:
        duty = duties[0]
        return OnDutyContact(name=duty.name, line_name=duty.line_name, phone=duty.phone or duty.line_phone)
    reader = case.claimed_by or case.assigned_to
    line = case.assigned_line
    if reader is not None:
        return OnDutyContact(name=reader.display_name, phone=reader.phone or (line.phone if line else ""),
                             line_name=line.name if line else "")
    if line is not None:
        return OnDutyContact(name="", phone=line.phone, line_name=line.name)
    return None


def referral_lines(case: Case) -> QuerySet[Any]:
    from apps.rosters.models import LineKind, OnCallLine

    return OnCallLine.objects.filter(kind=LineKind.REFERRAL, active=True, region_id=case.site.territory.region_id)


def radiologists_for_handoff(case: Case, *, exclude_id: int) -> QuerySet[Any]:
    from apps.accounts.models import User

    return (User.objects.filter(role="radiologist", is_active=True, authorised_sites=case.site_id)
            .exclude(pk=exclude_id).order_by("last_name"))
