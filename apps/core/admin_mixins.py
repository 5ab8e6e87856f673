"""Admin building blocks: every change made in the admin is audited, and a coordinator sees only their region."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from apps.audit.services import audit_record


def user_region_id(user: Any) -> int | None:
    """The region a non-superuser administers; None means no restriction (superuser)."""
    if user.is_superuser:
        return None
    if getattr(user, "region_id", None):
        return user.region_id
    est = user.memberships.select_related("establishment__territory").first()
    return est.establishment.territory.region_id if est else -1


class AuditedAdminMixin:
    """Records creations, changes (with the changed fields) and deletions through the audit service."""

    def save_model(self, request: HttpRequest, obj: Model, form: ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        audit_record(action="update" if change else "create", obj=obj,
                     details={"fields": sorted(form.changed_data), "via": "admin"})

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        audit_record(action="delete", obj=obj, details={"via": "admin"})
        super().delete_model(request, obj)  # type: ignore[misc]

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            audit_record(action="delete", obj=obj, details={"via": "admin bulk"})
        super().delete_queryset(request, queryset)  # type: ignore[misc]


class RegionScopedAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """``region_path`` is the ORM path from the model to its region id (e.g. 'territory__region')."""

    region_path: str = "region"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request)
        region_id = user_region_id(request.user)
        if region_id is None:
            return qs
        return qs.filter(**{f"{self.region_path}_id" if not self.region_path.endswith("_id") else self.region_path:
                            region_id}).distinct()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        _scope_choices(field, db_field.related_model, request)
        return field

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        _scope_choices(field, db_field.related_model, request)
        return field


_REGION_PATHS = {
    "regions.region": "id",
    "regions.territory": "region_id",
    "regions.poolingzone": "region_id",
    "regions.establishment": "territory__region_id",
    "rosters.onCallLine": "region_id",
    "rosters.oncallline": "region_id",
}


def _scope_choices(field: Any, model: Any, request: HttpRequest) -> None:
    if field is None or not hasattr(field, "queryset"):
        return
    region_id = user_region_id(request.user)
    path = _REGION_PATHS.get(f"{model._meta.app_label}.{model._meta.model_name}")
    if region_id is not None and path:
        field.queryset = field.queryset.filter(**{path: region_id})
