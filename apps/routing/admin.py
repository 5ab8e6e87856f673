from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from apps.audit.admin_mixins import RegionScopedAdmin
from apps.routing.models import (
    Notification,
    RoutingDecision,
    RoutingRule,
    RoutingTarget,
    validate_rule_targets,
)

if TYPE_CHECKING:
    from apps.regions.models import Modality


class TargetFormSet(BaseInlineFormSet):
    """Refuses a rule whose target has no agreement in force with a site of the rule's scope."""

    # Set by RoutingRuleAdmin._create_formsets on a POST: the modalities chosen in the rule's form (unsaved).
    parent_form_data: list[Modality] | None

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        rows = [f.cleaned_data for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        line_ids = [r["line"].pk for r in sorted(rows, key=lambda r: r.get("order") or 0) if r.get("line")]
        rule = self.instance
        parent_form = getattr(self, "parent_form_data", None)
        codes = [m.code for m in parent_form] if parent_form is not None else None
        errors = validate_rule_targets(rule, line_ids, codes)
        if errors:
            raise forms.ValidationError(errors)


class RoutingTargetInline(admin.TabularInline):
    model = RoutingTarget
    formset = TargetFormSet
    extra = 1
    ordering = ("order",)


class RoutingRuleForm(forms.ModelForm):
    period_kinds = forms.MultipleChoiceField(choices=[("weeknight", "weeknight"), ("weekend", "weekend"),
                                                      ("holiday", "holiday"), ("day", "day (regular hours)")],
                                             widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = RoutingRule
        fields = ("region", "name", "scope_kind", "site", "zone", "modalities", "period_kinds", "priority",
                  "delay_vital_minutes", "delay_urgent_minutes", "delay_deferred_minutes", "active")

    def _post_clean(self) -> None:
        # The targets formset checks the agreements with the targets and modalities being submitted.
        self.instance._skip_target_check = True
        # Django's private hook for model validation after clean(); django-stubs does not declare it.
        super()._post_clean()  # type: ignore[misc]


@admin.register(RoutingRule)
class RoutingRuleAdmin(RegionScopedAdmin, SimpleHistoryAdmin):
    form = RoutingRuleForm
    list_display = ("name", "region", "scope_kind", "site", "zone", "priority", "delay_vital_minutes",
                    "delay_urgent_minutes", "delay_deferred_minutes", "active")
    list_filter = ("scope_kind", "active")
    search_fields = ("name",)
    filter_horizontal = ("modalities",)
    inlines = [RoutingTargetInline]

    def _create_formsets(self, request: HttpRequest, obj: Any, change: bool) -> Any:
        formsets, inline_instances = super()._create_formsets(request, obj, change)
        # Give the target formset the modalities chosen in this very form (not yet saved).
        form_modalities = None
        if request.method == "POST":
            from apps.regions.models import Modality

            form_modalities = list(Modality.objects.filter(pk__in=request.POST.getlist("modalities")))
        for fs in formsets:
            if isinstance(fs, TargetFormSet):
                fs.parent_form_data = form_modalities
        return formsets, inline_instances


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(RegionScopedAdmin):
    region_path = "case__site__territory__region"
    list_display = ("case", "attempt", "at", "trigger", "purpose", "outcome", "radiologist", "line",
                    "escalation_level", "overflowed", "decision_ms")
    list_filter = ("outcome", "trigger", "purpose", "overflowed")
    readonly_fields = [f.name for f in RoutingDecision._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(RegionScopedAdmin):
    region_path = "user__region"
    list_display = ("created_at", "user", "channel", "kind", "title", "status", "error", "sent_at", "read_at")
    list_filter = ("channel", "status", "kind")
    readonly_fields = [f.name for f in Notification._meta.fields]

    def get_queryset(self, request: HttpRequest) -> Any:
        from apps.core.admin_mixins import user_region_id

        qs = admin.ModelAdmin.get_queryset(self, request)
        rid = user_region_id(request.user)
        return qs if rid is None else qs.filter(case__site__territory__region_id=rid)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
