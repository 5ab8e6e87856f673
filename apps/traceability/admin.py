from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.utils import timezone

from apps.audit.admin_mixins import RegionScopedAdmin
from apps.traceability.models import TechnicalIncident, TeleActRecord


@admin.register(TechnicalIncident)
class TechnicalIncidentAdmin(RegionScopedAdmin[TechnicalIncident]):
    """Incidents are also entered here by hand (image quality, network outage), linked to a case."""

    region_path = "establishment__territory__region"
    list_display = ("at", "kind", "severity", "source", "establishment", "case", "summary", "resolved_at")
    list_filter = ("kind", "severity", "source")
    search_fields = ("summary",)
    date_hierarchy = "at"
    raw_id_fields = ("case", "study")
    readonly_fields = ("reported_by",)

    def get_changeform_initial_data(self, request: Any) -> dict[str, Any]:
        return {"at": timezone.now(), "source": "manual", **super().get_changeform_initial_data(request)}

    def save_model(self, request: Any, obj: TechnicalIncident, form: Any, change: bool) -> None:
        if not change:
            obj.reported_by = request.user
            if not obj.establishment_id and obj.case is not None:  # no case set: None, without a query
                obj.establishment_id = obj.case.site_id
        super().save_model(request, obj, form, change)


@admin.register(TeleActRecord)
class TeleActRecordAdmin(admin.ModelAdmin):
    """Frozen records are evidence: read-only."""

    list_display = ("case", "frozen_at", "sha256")
    readonly_fields = ("case", "frozen_at", "snapshot", "sha256")

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
