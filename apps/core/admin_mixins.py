"""Admin building blocks: a coordinator sees only their region (the audited admin classes are apps.audit.admin_mixins)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def user_region_id(user: Any) -> int | None:
    """The region a non-superuser administers; None means no restriction (superuser)."""
    if user.is_superuser:
        return None
    if getattr(user, "region_id", None):
        return user.region_id
    est = user.memberships.select_related("establishment__territory").first()
    return est.establishment.territory.region_id if est else -1


_REGION_PATHS = {
    "regions.region": "id",
    "regions.territory": "region_id",
    "regions.poolingzone": "region_id",
    "regions.establishment": "territory__region_id",
    "rosters.onCallLine": "region_id",
    "rosters.oncallline": "region_id",
}


def region_scope_choices(field: Any, model: Any, request: HttpRequest) -> None:
    """Limit a form field's choices to the user's region when the model has a known path to it."""
    if field is None or not hasattr(field, "queryset"):
        return
    region_id = user_region_id(request.user)
    path = _REGION_PATHS.get(f"{model._meta.app_label}.{model._meta.model_name}")
    if region_id is not None and path:
        field.queryset = field.queryset.filter(**{path: region_id})
