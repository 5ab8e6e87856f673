"""Reads for the API, always scoped to what the caller may see.

An integration key sees its own establishment only; a session user sees the establishments
they belong to (a coordinator: the region; a radiologist: the sites they read for and the
requests assigned to them). Objects outside the scope are "not found", never "forbidden",
so that an integration cannot probe another establishment's identifiers.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from apps.api.authentication import Integration


def _user_site_q(user: Any, field: str) -> Q:
    role = getattr(user, "role", "")
    if role == "ars_coordinator" and getattr(user, "region_id", None):
        return Q(**{f"{field}__territory__region_id": user.region_id})
    site_ids = set(user.memberships.values_list("establishment_id", flat=True))
    if role == "radiologist":
        site_ids |= set(user.authorised_sites.values_list("pk", flat=True))
    return Q(**{f"{field}_id__in": site_ids})


def _scoped(qs: QuerySet[Any], user: Any, *, case_path: str) -> QuerySet[Any]:
    """A key sees its establishment; a person their sites, and a radiologist also the cases assigned to or
    claimed by them (``case_path`` leads from the queryset's model to the case)."""
    if isinstance(user, Integration):
        return qs.filter(site_id=user.establishment_id)
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    q = _user_site_q(user, "site")
    if getattr(user, "role", "") == "radiologist":
        q |= Q(**{f"{case_path}assigned_to_id": user.pk}) | Q(**{f"{case_path}claimed_by_id": user.pk})
    return qs.filter(q)


def cases_visible_to(user: Any) -> QuerySet[Any]:
    from apps.worklist.models import Case

    qs = Case.objects.select_related("modality", "site", "assigned_to", "assigned_line", "claimed_by")
    return _scoped(qs, user, case_path="")


def studies_visible_to(user: Any) -> QuerySet[Any]:
    from apps.studies.models import Study

    return _scoped(Study.objects.select_related("case"), user, case_path="case__")


def worklist_for(user: Any) -> QuerySet[Any]:
    """Open requests: a radiologist's own queue (assigned or claimed), otherwise the caller's open requests."""
    from django.db.models import Case as When_
    from django.db.models import IntegerField, Value, When

    from apps.worklist.models import OPEN_STATUSES, URGENCY_RANK

    qs = cases_visible_to(user).filter(status__in=OPEN_STATUSES)
    if not isinstance(user, Integration) and getattr(user, "role", "") == "radiologist":
        qs = qs.filter(Q(assigned_to_id=user.pk) | Q(claimed_by_id=user.pk))
    rank = When_(*[When(urgency=k, then=Value(v)) for k, v in URGENCY_RANK.items()], default=Value(9),
                 output_field=IntegerField())
    return qs.annotate(urgency_rank=rank).order_by("urgency_rank", "requested_at", "pk")


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
