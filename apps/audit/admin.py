from __future__ import annotations

from django.apps import apps
from django.contrib import admin

from apps.audit.models import AuditEntry
from apps.core.admin_mixins import user_region_id


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only."""

    list_display = ("at", "actor_username", "actor_role", "action", "object_type", "object_id", "channel", "ip")
    list_filter = ("action", "channel", "patient_data", "object_type")
    search_fields = ("actor_username", "object_id", "object_repr")
    date_hierarchy = "at"

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        qs = super().get_queryset(request)
        rid = user_region_id(request.user)
        if rid is None:
            return qs
        # Entries keep a bare establishment id (no foreign key: audit sits below regions); the establishments
        # of the region are read by model name, as a string ForeignKey names its model.
        establishment = apps.get_model("regions", "Establishment")
        return qs.filter(establishment_id__in=establishment.objects.filter(territory__region_id=rid).values("id"))
