from django.contrib import admin

from apps.core.admin_mixins import RegionScopedAdmin
from apps.traceability.models import TechnicalIncident


@admin.register(TechnicalIncident)
class TechnicalIncidentAdmin(RegionScopedAdmin):
    region_path = "establishment__territory__region"
    list_display = ("at", "kind", "severity", "source", "establishment", "case", "summary", "resolved_at")
    list_filter = ("kind", "severity", "source")
    search_fields = ("summary",)
    date_hierarchy = "at"
