"""The coordinator edits the report templates here; every change is audited (AuditedAdminMixin)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.audit.admin_mixins import AuditedAdminMixin
from apps.worklist.models import ReportTemplate


@admin.register(ReportTemplate)
class ReportTemplateAdmin(AuditedAdminMixin[ReportTemplate], admin.ModelAdmin):
    list_display = ("label", "modality", "keywords", "order", "active")
    list_editable = ("order", "active")
    list_filter = ("modality", "active")
    search_fields = ("label", "keywords")
    fieldsets = (
        (None, {"fields": ("label", "key", "modality", "keywords", "order", "active")}),
        (_("Report"), {"fields": ("technique", "findings", "conclusion")}),
    )
