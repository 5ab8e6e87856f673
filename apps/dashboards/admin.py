from __future__ import annotations

from django import forms
from django.contrib import admin

from apps.accounts.models import Role
from apps.audit.admin_mixins import RegionScopedAdmin
from apps.dashboards.models import RiskEntry, TrainingSession


@admin.register(RiskEntry)
class RiskEntryAdmin(RegionScopedAdmin):
    region_path = "region"
    list_display = ("risk", "nature", "impact", "probability", "criticality", "owner", "due_date", "status",
                    "last_review")
    list_filter = ("nature", "status")
    search_fields = ("risk", "owner")
    readonly_fields = ("criticality",)


class TrainingSessionForm(forms.ModelForm):
    profile = forms.ChoiceField(choices=Role.choices)

    class Meta:
        model = TrainingSession
        fields = ("region", "date", "profile", "people_trained", "establishment", "topic")


@admin.register(TrainingSession)
class TrainingSessionAdmin(RegionScopedAdmin):
    region_path = "region"
    form = TrainingSessionForm
    list_display = ("date", "profile", "people_trained", "establishment", "topic")
    list_filter = ("profile",)
    date_hierarchy = "date"
