from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from apps.audit.admin_mixins import RegionScopedAdmin
from apps.core.forms import WordListField
from apps.regions.models import (
    Agreement,
    DicomNode,
    Establishment,
    ExtraClosedDay,
    ImagingDevice,
    Modality,
    PoolingZone,
    Region,
    ServiceLevel,
    Territory,
)


class ExtraClosedDayInline(admin.TabularInline):
    model = ExtraClosedDay
    extra = 0


class ServiceLevelInline(admin.TabularInline):
    model = ServiceLevel
    max_num = 3

    def get_extra(self, request, obj=None, **kwargs):  # type: ignore[no-untyped-def]
        # A region without its three rows (created since the migration seeded the others) shows blank ones.
        return 3 - (obj.service_levels.count() if obj is not None else 0)


@admin.register(Region)
class RegionAdmin(RegionScopedAdmin, SimpleHistoryAdmin):
    region_path = "id"
    list_display = ("name", "code", "weekday_night_start", "weekday_night_end",
                    "max_on_calls_per_month")
    search_fields = ("name", "code")
    inlines = [ExtraClosedDayInline, ServiceLevelInline]

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        from apps.core.admin_mixins import user_region_id

        qs = admin.ModelAdmin.get_queryset(self, request)
        rid = user_region_id(request.user)
        return qs if rid is None else qs.filter(id=rid)


@admin.register(Territory)
class TerritoryAdmin(RegionScopedAdmin):
    list_display = ("name", "code", "region")
    list_filter = ("region",)
    search_fields = ("name", "code")


@admin.register(PoolingZone)
class PoolingZoneAdmin(RegionScopedAdmin):
    list_display = ("name", "region")
    filter_horizontal = ("territories",)
    search_fields = ("name",)


@admin.register(Modality)
class ModalityAdmin(admin.ModelAdmin):
    list_display = ("code", "label", "teleradiology_eligible", "weight", "dicom_codes")


class ImagingDeviceInline(admin.TabularInline):
    model = ImagingDevice
    extra = 0


class DicomNodeInline(admin.TabularInline):
    model = DicomNode
    extra = 0
    fields = ("ae_title", "allowed_hosts", "tls_required", "description", "active", "qr_enabled", "qr_ae_title",
              "qr_host", "qr_port", "qr_ins_in_other_ids", "qr_retrieve")


class EstablishmentForm(forms.ModelForm):
    subspecialties = WordListField(label=_("sub-specialties offered"), required=False,
                                   help_text=_("Comma-separated, e.g. neuro, paediatric, msk."))

    class Meta:
        model = Establishment
        fields = ("subspecialties",)  # the admin adds the fields of its fieldsets


@admin.register(Establishment)
class EstablishmentAdmin(RegionScopedAdmin, SimpleHistoryAdmin):
    form = EstablishmentForm
    region_path = "territory__region"
    list_display = ("name", "finess", "kind", "is_public", "territory", "city", "phone_24h", "active")
    list_filter = ("kind", "is_public", "active", "territory")
    search_fields = ("name", "finess", "city", "dicom_nodes__ae_title")
    inlines = [ImagingDeviceInline, DicomNodeInline]
    fieldsets = (
        (None, {"fields": ("name", "finess", "kind", "is_public", "territory", "active")}),
        (_("Location and contact"), {"fields": ("address", "city", "department", "latitude", "longitude", "phone_24h")}),
        (_("Expertise"), {"fields": ("subspecialties", "paediatric_ultrasound", "ultrasound_ages")}),
    )


@admin.register(DicomNode)
class DicomNodeAdmin(RegionScopedAdmin):
    region_path = "establishment__territory__region"
    list_display = ("ae_title", "establishment", "allowed_hosts", "tls_required", "active", "qr_enabled")
    list_filter = ("tls_required", "active", "qr_enabled")
    search_fields = ("ae_title", "establishment__name")


@admin.register(Agreement)
class AgreementAdmin(RegionScopedAdmin, SimpleHistoryAdmin):
    region_path = "requesting__territory__region"
    list_display = ("requesting", "partner", "status", "modality_codes", "pds_only", "valid_from", "valid_until",
                    "signed_on")
    list_filter = ("status", "modalities", "pds_only")
    search_fields = ("requesting__name", "partner__name", "requesting__finess", "partner__finess")
    filter_horizontal = ("modalities",)
    date_hierarchy = "valid_from"

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("modalities")

    @admin.display(description=_("modalities covered"))
    def modality_codes(self, obj: Agreement) -> str:
        return ", ".join(sorted(m.code for m in obj.modalities.all()))
