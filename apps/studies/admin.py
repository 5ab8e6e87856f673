from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from apps.audit.admin_mixins import RegionScopedAdmin
from apps.audit.services import audit_read
from apps.studies.models import Instance, QuarantinedInstance, Series, Study


class SeriesInline(admin.TabularInline):
    model = Series
    extra = 0
    can_delete = False
    fields = ("number", "modality", "description", "num_instances", "received_after_completion")
    readonly_fields = fields


class PatientDataReadAudited:
    """Opening a study or instance shows patient identity: the read is audited."""

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        obj = self.get_object(request, object_id)  # type: ignore[attr-defined]
        if obj is not None:
            audit_read(obj)
        return super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]


@admin.register(Study)
class StudyAdmin(PatientDataReadAudited, RegionScopedAdmin):
    region_path = "site__territory__region"
    list_display = ("study_uid", "site", "modality", "status", "num_series", "num_instances", "last_received_at",
                    "routing_enqueued_at", "late_series", "ultrasound")
    list_filter = ("status", "ultrasound", "late_series", "site")
    search_fields = ("study_uid", "accession_number", "patient_id")
    readonly_fields = [f.name for f in Study._meta.fields]
    inlines = [SeriesInline]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Instance)
class InstanceAdmin(PatientDataReadAudited, RegionScopedAdmin):
    region_path = "study__site__territory__region"
    list_display = ("sop_instance_uid", "study", "instance_number", "size", "received_at")
    search_fields = ("sop_instance_uid",)
    readonly_fields = [f.name for f in Instance._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(QuarantinedInstance)
class QuarantinedInstanceAdmin(PatientDataReadAudited, admin.ModelAdmin):
    list_display = ("sop_instance_uid", "calling_ae", "reason", "received_at")
    readonly_fields = [f.name for f in QuarantinedInstance._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
