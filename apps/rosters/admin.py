from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from simple_history.admin import SimpleHistoryAdmin

from apps.audit.admin_mixins import RegionScopedAdmin
from apps.core.admin_mixins import user_region_id
from apps.core.errors import ApplicationError
from apps.rosters.contracts import ContractHours
from apps.rosters.models import Intervention, OnCallLine, ProviderQueue, Shift, ShiftKind
from apps.rosters.services import intervention_check, intervention_record, roster_import_csv, shift_violations
from apps.rosters.texts import roster_text


@admin.register(ProviderQueue)
class ProviderQueueAdmin(RegionScopedAdmin, SimpleHistoryAdmin):
    """A private provider's contract: hours, capacity, time to take a case (routing queues cases to its line)."""

    region_path = "line__region"
    list_display = ("line", "hours", "capacity_per_hour", "sla_vital_minutes", "sla_urgent_minutes",
                    "sla_deferred_minutes", "active")
    list_filter = ("active",)
    search_fields = ("line__name",)

    @admin.display(description=_("contracted hours"))
    def hours(self, obj: ProviderQueue) -> str:
        return ContractHours(obj.weekday_start, obj.weekday_end, obj.weekends, obj.holidays).label


@admin.register(OnCallLine)
class OnCallLineAdmin(RegionScopedAdmin, SimpleHistoryAdmin):
    list_display = ("name", "kind", "region", "subspecialty", "overflow_threshold", "phone", "active")
    list_filter = ("kind", "active")
    search_fields = ("name",)
    filter_horizontal = ("holders", "modalities", "served_sites")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "title": _("On-call lines")}
        messages.info(request, format_html('<a href="{}">{}</a> · <a href="{}">{}</a>', reverse("rosters:coverage"),
                                           _("Coverage report (gaps)"), reverse("admin:rosters_shift_import"),
                                           _("Import a month of shifts (CSV)")))
        return super().changelist_view(request, extra_context)


class ShiftForm(forms.ModelForm):
    class Meta:
        model = Shift
        fields = ("line", "radiologist", "start", "end", "kind", "role")

    def clean(self) -> dict[str, Any]:
        super().clean()  # ModelForm.clean() returns cleaned_data; the stubs type it optional
        data = self.cleaned_data
        line, who, start, end = (data.get(k) for k in ("line", "radiologist", "start", "end"))
        if line and who and start and end and end > start:
            violations = shift_violations(line=line, radiologist=who, start=start, end=end,
                                          kind=data.get("kind") or "garde", shift_id=self.instance.pk)
            if violations:
                raise forms.ValidationError([roster_text(v.message) for v in violations])
        return data


class CsvImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"), help_text=_(
        "Columns: line;radiologist;start;end;kind;role — line by name, radiologist by username or RPPS, "
        "times as YYYY-MM-DD HH:MM (Paris), kind garde/astreinte/remote, role primary/backup/expert."))


@admin.register(Shift)
class ShiftAdmin(RegionScopedAdmin, SimpleHistoryAdmin):
    region_path = "line__region"
    form = ShiftForm
    list_display = ("radiologist", "line", "start", "end", "kind", "role", "warnings")
    list_filter = ("kind", "role", "line")
    search_fields = ("radiologist__username", "radiologist__last_name", "line__name")
    date_hierarchy = "start"
    autocomplete_fields = ()

    @admin.display(description=_("roster warnings"))
    def warnings(self, obj: Shift) -> str:
        return " ".join(roster_text(f.get("message", "")) for f in obj.flags or []) or "—"

    def get_urls(self) -> list[Any]:
        return [path("import/", self.admin_site.admin_view(self.import_view), name="rosters_shift_import"),
                *super().get_urls()]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            return redirect("admin:index")
        region_id = user_region_id(request.user)
        from apps.regions.models import Region

        regions = Region.objects.all() if region_id is None else Region.objects.filter(pk=region_id)
        result = None
        form = CsvImportForm(request.POST or None, request.FILES or None)
        region_choice = request.POST.get("region") or ""
        if not region_choice:
            first_region = regions.first()
            region_choice = str(first_region.pk) if first_region is not None else ""
        if request.method == "POST" and form.is_valid() and regions.filter(pk=region_choice or 0).exists():
            content = form.cleaned_data["file"].read().decode("utf-8-sig", errors="replace")
            result = roster_import_csv(region_id=int(region_choice), content=content)
            if result.ok:
                messages.success(request, ngettext("%(n)d shift imported.", "%(n)d shifts imported.",
                                                   result.created) % {"n": result.created})
                return redirect("admin:rosters_shift_changelist")
            messages.error(request, _("Nothing was imported: correct the lines below and send the file again."))
        return render(request, "rosters/admin_import.html", {
            **self.admin_site.each_context(request), "form": form, "result": result, "regions": regions,
            "region_choice": region_choice, "title": _("Import a month of shifts"), "opts": self.model._meta})


class InterventionForm(forms.ModelForm):
    class Meta:
        model = Intervention
        fields = ("shift", "start", "end", "note")

    def __init__(self, *args: Any, actor: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.actor = actor

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        shift, start, end = data.get("shift"), data.get("start"), data.get("end")
        if shift and start and end and self.actor is not None:
            try:
                intervention_check(shift=shift, start=start, end=end, actor=self.actor)
            except ApplicationError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return data


@admin.register(Intervention)
class InterventionAdmin(RegionScopedAdmin):
    """The coordinator records an astreinte intervention (work time, rest after it) through the service, which
    flags the radiologist's later shifts that now break a rule. Recorded interventions are not edited."""

    region_path = "shift__line__region"
    form = InterventionForm
    list_display = ("shift", "start", "end", "note", "recorded_by")
    list_filter = ("shift__line",)
    search_fields = ("shift__radiologist__username", "shift__radiologist__last_name")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)

        class WithActor(form):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, actor=request.user, **kw)

        return WithActor

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "shift":  # the astreintes of the coordinator's region
            shifts = Shift.objects.filter(kind=ShiftKind.ASTREINTE).select_related("line", "radiologist")
            region_id = user_region_id(request.user)
            kwargs["queryset"] = shifts if region_id is None else shifts.filter(line__region_id=region_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Intervention, form: Any, change: bool) -> None:
        intervention, flagged = intervention_record(shift_id=obj.shift_id, start=obj.start, end=obj.end,
                                                    actor=request.user, note=obj.note)  # type: ignore[arg-type]
        obj.pk = intervention.pk
        for shift in flagged:
            messages.warning(request, _("%(shift)s now breaks a roster rule and is offered no case: %(why)s") % {
                "shift": shift, "why": " ".join(roster_text(f.get("message", "")) for f in shift.flags)})
