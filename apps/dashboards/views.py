"""The ARS steering dashboard: the coordinator's page for their region, and the same page read-only and
scoped to their establishment for an establishment administrator, a radiologist or an emergency physician
(aggregates only). Every table is also a CSV download."""

from __future__ import annotations

import csv
import datetime as dt
from typing import Any, cast

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from apps.accounts.authorization import access_refused
from apps.audit.services import audit_record
from apps.dashboards.labels import column_label, note_label, title_label, value_label
from apps.dashboards.selectors import PANELS, PARIS, DashboardFilter, Table, dashboard_tables

PANEL_TITLES = {"activity": _("Activity"), "turnaround": _("Turnaround"), "load": _("Load"), "actors": _("Actors"),
                "coverage": _("On-call coverage"), "risks": _("Risks")}


def _display_rows(table: Table) -> list[tuple[str, tuple[Any, ...]]]:
    """Rows with a CSS class: overdue reviews and missed targets are highlighted."""
    cols = table.columns
    out = []
    for r in table.rows:
        cls = ""
        if ("review_overdue" in cols and r[cols.index("review_overdue")]) or ("overdue" in cols
                                                                             and r[cols.index("overdue")]):
            cls = "overdue"
        elif "p90_within_target" in cols and r[cols.index("p90_within_target")] is False:
            cls = "overdue"
        elif "level" in cols:
            cls = f"level-{r[cols.index('level')]}"
        out.append((cls, tuple(value_label(v) for v in r)))
    return out


def _display_table(table: Table) -> dict[str, Any]:
    """The table as the page shows it: title, column headers and notes in the reader's language."""
    return {"name": table.name, "title": title_label(table.title),
            "columns": [column_label(c) for c in table.columns], "notes": [note_label(n) for n in table.notes]}


class FilterForm(forms.Form):
    # A date input takes ISO dates whatever the page's language (a French "30/11/2026" would show empty).
    start = forms.DateField(label=_("From"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    end = forms.DateField(label=_("To (inclusive)"), required=False,
                          widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    territory = forms.TypedChoiceField(label=_("Territory"), required=False, coerce=int, empty_value=None)
    site = forms.TypedChoiceField(label=_("Site"), required=False, coerce=int, empty_value=None)
    modality = forms.ChoiceField(label=_("Modality"), required=False)

    def __init__(self, *args: Any, region_id: int, scope_establishment_id: int | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from apps.regions.models import Establishment, Modality, Territory

        cast(forms.ChoiceField, self.fields["territory"]).choices = [("", "—")] + list(
            Territory.objects.filter(region_id=region_id).order_by("name").values_list("pk", "name"))
        sites = Establishment.objects.filter(territory__region_id=region_id, kind="requesting").order_by("name")
        if scope_establishment_id:
            sites = sites.filter(pk=scope_establishment_id)
        cast(forms.ChoiceField, self.fields["site"]).choices = [("", "—")] + list(sites.values_list("pk", "name"))
        cast(forms.ChoiceField, self.fields["modality"]).choices = [("", "—")] + list(Modality.objects.values_list("code", "code"))


# Aggregates shared with every actor (DOMAIN.md, indicators): these profiles read the dashboard scoped to their
# establishment (as requesting site, or as holder of the lines that read the cases).
ESTABLISHMENT_SCOPED = ("establishment_admin", "radiologist", "emergency_physician")


def _scope(request: HttpRequest) -> tuple[int, int | None]:
    """(region id, establishment scope) of the user; PermissionDenied (audited) for other profiles."""
    user: Any = request.user
    if user.role == "ars_coordinator" and user.region_id:
        return user.region_id, None
    if user.role in ESTABLISHMENT_SCOPED and user.primary_establishment_id:
        from apps.regions.models import Establishment

        est = Establishment.objects.select_related("territory").get(pk=user.primary_establishment_id)
        return est.territory.region_id, est.pk
    if user.is_superuser:
        from apps.regions.models import Region

        region = Region.objects.order_by("pk").first()
        if region is not None:
            return region.pk, None
    access_refused(request, reason="rule", status=403, object_type="dashboards.dashboard",
                   details={"why": "no establishment or region to scope the dashboard to"})
    raise PermissionDenied


def _filter_from(request: HttpRequest) -> tuple[DashboardFilter, FilterForm]:
    region_id, scope = _scope(request)
    form = FilterForm(request.GET or None, region_id=region_id, scope_establishment_id=scope)
    # Invalid fields (e.g. a site outside the administrator's scope) are dropped, the valid ones kept.
    data: dict[str, Any] = {}
    if form.is_bound:
        form.is_valid()
        data = form.cleaned_data
    today = timezone.now().astimezone(PARIS).date()
    end_day = data.get("end") or today
    start_day = data.get("start") or end_day - dt.timedelta(days=29)
    if not form.is_bound:
        form = FilterForm(initial={"start": start_day, "end": end_day}, region_id=region_id,
                          scope_establishment_id=scope)
    f = DashboardFilter(
        region_id=region_id,
        start=dt.datetime.combine(start_day, dt.time(0), tzinfo=PARIS),
        end=dt.datetime.combine(end_day + dt.timedelta(days=1), dt.time(0), tzinfo=PARIS),
        territory_id=data.get("territory"), site_id=data.get("site"), modality=data.get("modality") or None,
        scope_establishment_id=scope)
    return f, form


def _chart_data(t: dict[str, Table]) -> dict[str, Any]:
    def col(name: str, c: str) -> list[Any]:
        table = t[name]
        i = table.columns.index(c)
        return [r[i] for r in table.rows]

    months = sorted({r[1] for r in t["activity_substitution"].rows})
    ct = dict.fromkeys(months, 0)
    us = dict.fromkeys(months, 0)
    for r in t["activity_substitution"].rows:
        ct[r[1]] += r[2]
        us[r[1]] += r[3]
    ta = [r for r in t["turnaround_all"].rows]
    return {
        "sites": {"labels": col("activity_sites", "site"), "emergency": col("activity_sites", "emergency"),
                  "non_emergency": col("activity_sites", "non_emergency")},
        "modalities": {"labels": col("activity_modalities", "modality"),
                       "requests": col("activity_modalities", "requests")},
        "substitution": {"labels": months, "ct": list(ct.values()), "us": list(us.values())},
        "turnaround": {"labels": [value_label(r[1]) for r in ta], "median": [r[3] for r in ta], "p90": [r[4] for r in ta]},
        "load": {"labels": col("load_radiologists", "radiologist"),
                 "per_shift": col("load_radiologists", "cases_per_shift")},
    }


def _heat_max(table: Table) -> int:
    return max([v for r in table.rows for v in r[1:]] + [1])


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    f, form = _filter_from(request)
    tables = dashboard_tables(f, now=timezone.now())
    audit_record(action="read", object_type="dashboards.dashboard", object_id=f.region_id,
                 object_repr="ARS steering dashboard", establishment_id=f.scope_establishment_id,
                 details={"filters": {"start": f.start.isoformat(), "end": f.end.isoformat(),
                                      "territory": f.territory_id, "site": f.site_id, "modality": f.modality}})
    heat = tables["activity_heatmap"]
    heat_max = _heat_max(heat)
    heat_rows = [(value_label(r[0]), [(v, round(v / heat_max, 2)) for v in r[1:]]) for r in heat.rows]
    panels = [(p, PANEL_TITLES[p], [(_display_table(t), _display_rows(t)) for name, t in tables.items()
                                    if name.startswith(p + "_")])
              for p in PANELS]
    return render(request, "dashboards/dashboard.html", {
        "form": form, "filter": f, "panels": panels, "tables": tables, "heat_rows": heat_rows,
        "heat_hours": heat.columns[1:], "charts": _chart_data(tables), "query": request.GET.urlencode(),
        "read_only": f.scope_establishment_id is not None,
    })


@require_GET
@login_required
def table_csv(request: HttpRequest, name: str) -> HttpResponse:
    panel = name.split("_", 1)[0]
    if panel not in PANELS:
        raise Http404
    f, _form = _filter_from(request)
    tables = dashboard_tables(f, now=timezone.now(), panels=(panel,))
    table = tables.get(name)
    if table is None:
        raise Http404
    audit_record(action="export", object_type="dashboards.table", object_id=name, object_repr=table.title,
                 establishment_id=f.scope_establishment_id, details={"format": "csv"})
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{name}_{f.start.astimezone(PARIS):%Y%m%d}_'
        f'{(f.end - dt.timedelta(days=1)).astimezone(PARIS):%Y%m%d}.csv"')
    # What a French spreadsheet opens as columns with its accents intact: a byte-order mark and ";". Headers and
    # enumerated values (weekdays, stages) in the reader's language; ``keys=1`` keeps the stable keys for scripts.
    keys = request.GET.get("keys") == "1"
    response.write("\ufeff")
    writer = csv.writer(response, delimiter=";")
    writer.writerow(table.columns if keys else [column_label(c) for c in table.columns])
    for row in table.rows:
        writer.writerow(["" if v is None else (v if keys else _csv_value(v)) for v in row])
    return response


def _csv_value(value: Any) -> Any:
    """A cell for the reader: labels translated, booleans as oui/non, decimals with the reader's separator (a
    French spreadsheet reads "3,5" as a number, "3.5" as text); ISO dates as they are."""
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    if isinstance(value, float):
        return number_format(value, use_l10n=True)
    return value_label(value)
