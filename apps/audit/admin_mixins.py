"""Admin classes whose every change is audited (audit_record in the request's transaction), region-scoped for
coordinators. Here, with audit, so that core imports nothing above it."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from apps.audit.services import audit_record
from apps.core.admin_mixins import region_scope_choices, user_region_id

_ModelT = TypeVar("_ModelT", bound=Model)


class AuditedAdminMixin(Generic[_ModelT]):
    """Records creations, changes (with the changed fields) and deletions through the audit service.

    Generic in the admin's model, so that a subclass's ``save_model`` may take its own model
    (``class ApiKeyAdmin(RegionScopedAdmin[ApiKey])``); typing.Generic, because Django's ModelAdmin is
    generic in the stubs only."""

    def save_model(self, request: HttpRequest, obj: _ModelT, form: ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        audit_record(action="update" if change else "create", obj=obj,
                     details={"fields": sorted(form.changed_data), "via": "admin"})

    def delete_model(self, request: HttpRequest, obj: _ModelT) -> None:
        audit_record(action="delete", obj=obj, details={"via": "admin"})
        super().delete_model(request, obj)  # type: ignore[misc]

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[_ModelT]) -> None:
        for obj in queryset:
            audit_record(action="delete", obj=obj, details={"via": "admin bulk"})
        super().delete_queryset(request, queryset)  # type: ignore[misc]


class RegionScopedAdmin(AuditedAdminMixin[_ModelT], admin.ModelAdmin):
    """``region_path`` is the ORM path from the model to its region id (e.g. 'territory__region')."""

    region_path: str = "region"

    def get_queryset(self, request: HttpRequest) -> QuerySet[_ModelT]:
        qs = super().get_queryset(request)
        region_id = user_region_id(request.user)
        if region_id is None:
            return qs
        return qs.filter(**{f"{self.region_path}_id" if not self.region_path.endswith("_id") else self.region_path:
                            region_id}).distinct()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        region_scope_choices(field, db_field.related_model, request)
        return field

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        region_scope_choices(field, db_field.related_model, request)
        return field
