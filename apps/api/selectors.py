"""Reads for the API, always scoped to what the caller may see.

Which cases and studies a caller may see is decided by ``apps.worklist.selectors`` (the same rule as the
web app): an integration key sees its own establishment only; a session user what their role allows
there (site staff their establishments, a coordinator the region, a radiologist the cases they take part
in). Objects outside the scope are "not found", never "forbidden", so that an integration cannot probe
another establishment's identifiers.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Case as When_
from django.db.models import IntegerField, QuerySet, Value, When

from apps.api.authentication import Integration
from apps.regions.models import Modality
from apps.worklist import selectors as worklist_selectors
from apps.worklist.models import OPEN_STATUSES, URGENCY_RANK, Case


def cases_visible_to(principal: Any) -> QuerySet[Case]:
    return worklist_selectors.cases_visible_to(principal).select_related(
        "modality", "site", "assigned_to", "assigned_line", "claimed_by")


def studies_visible_to(principal: Any) -> QuerySet[Any]:
    return worklist_selectors.studies_visible_to(principal).select_related("case")


def worklist_for(principal: Any) -> QuerySet[Case]:
    """Open requests by urgency: a radiologist's own queue (assigned or claimed, not the line's unclaimed
    cases), otherwise the caller's open requests."""
    qs = (worklist_selectors.cases_visible_to(principal, visibility=worklist_selectors.Visibility.OWN_QUEUE)
          .select_related("modality", "site", "assigned_to", "assigned_line", "claimed_by")
          .filter(status__in=OPEN_STATUSES))
    rank = When_(*[When(urgency=k, then=Value(v)) for k, v in URGENCY_RANK.items()], default=Value(9),
                 output_field=IntegerField())
    return qs.annotate(urgency_rank=rank).order_by("urgency_rank", "requested_at", "pk")


def provider_queue_for(principal: Any) -> QuerySet[Case]:
    """The requests waiting in the queues of the provider the caller works for, most urgent then oldest first."""
    rank = When_(*[When(urgency=k, then=Value(v)) for k, v in URGENCY_RANK.items()], default=Value(9),
                 output_field=IntegerField())
    return (worklist_selectors.provider_queue_cases(principal)
            .select_related("modality", "site", "assigned_to", "assigned_line", "claimed_by")
            .annotate(urgency_rank=rank).order_by("urgency_rank", "requested_at", "pk"))


def region_id_of(user: Any) -> int | None:
    from apps.regions.models import Establishment

    if isinstance(user, Integration):
        return (Establishment.objects.filter(pk=user.establishment_id)
                .values_list("territory__region_id", flat=True).first())
    region_id: int | None = getattr(user, "region_id", None)
    if region_id:
        return region_id
    site_id: int | None = getattr(user, "primary_establishment_id", None)
    if site_id is None:
        return None
    return Establishment.objects.filter(pk=site_id).values_list("territory__region_id", flat=True).first()


def establishments_visible_to(user: Any) -> QuerySet[Any]:
    """The regional directory (no patient data): the establishments of the caller's region."""
    from apps.regions.models import Establishment

    region_id = region_id_of(user)
    qs = Establishment.objects.select_related("territory").order_by("name")
    return qs.filter(territory__region_id=region_id) if region_id else qs.none()


def practitioners_visible_to(user: Any) -> QuerySet[Any]:
    from apps.accounts.models import User

    region_id = region_id_of(user)
    qs = User.objects.filter(role__in=["radiologist", "emergency_physician"], is_active=True)
    return qs.filter(region_id=region_id) if region_id else qs.none()


def modality_choices() -> list[tuple[str, str]]:
    """The modality catalogue as (code, label): the values the API accepts for ``modality``, and its schema's
    enum (the catalogue is data, so the enum is the one in force when the schema is generated)."""
    return [(code, label) for code, label in Modality.objects.order_by("code").values_list("code", "label")]
