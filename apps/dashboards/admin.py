from __future__ import annotations

from django import forms
from django.contrib import admin

from apps.accounts.models import Role
from apps.audit.admin_mixins import RegionScopedAdmin
from apps.dashboards.models import RiskAction, RiskEntry, TrainingSession


class RiskActionInline(admin.TabularInline):
    """The preventive actions of a risk, each with its owner, due date and status."""

    model = RiskAction
    extra = 1
    fields = ("action", "owner", "due_date", "status", "done_on")


@admin.register(RiskEntry)
class RiskEntryAdmin(RegionScopedAdmin):
    region_path = "region"
    list_display = ("risk", "nature", "impact", "probability", "criticality", "status", "last_review")
    list_filter = ("nature", "status")
    search_fields = ("risk", "actions__owner", "actions__action")
    readonly_fields = ("criticality",)
    inlines = [RiskActionInline]


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
