"""Coordinator's coverage page and roster calendar, each radiologist's iCal feed and astreinte interventions."""

from __future__ import annotations

import datetime as dt
import hmac

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from icalendar import Calendar, Event

from apps.accounts.decorators import AuthenticatedHttpRequest, clinical_login_required
from apps.accounts.models import Role, User
from apps.core.admin_mixins import user_region_id
from apps.core.errors import ApplicationError
from apps.regions.calendar import PARIS
from apps.rosters.models import Intervention, OnCallLine, Shift, ShiftKind, ShiftRole
from apps.rosters.selectors import (
    COVERAGE_STATES,
    agreements_in_force_for_region,
    coverage_report,
    coverage_state,
    ical_token,
    provider_queues_for_region,
    roster_calendar,
    shifts_for_radiologist,
)
from apps.rosters.services import intervention_record


def _coordinator_region(request: HttpRequest) -> int:
    """The region of the coordinator's pages (a superuser without one: the first region)."""
    user = request.user
    if not (user.is_superuser or getattr(user, "role", "") == Role.ARS_COORDINATOR):  # type: ignore[union-attr]
        raise PermissionDenied("The coordinator's roster pages are for the regional coordinator.")
    region_id = user_region_id(user)
    if region_id is None:
        from apps.regions.models import Region

        first = Region.objects.order_by("pk").first()
        region_id = first.pk if first else None
    if region_id is None or region_id < 0:
        raise Http404("No region")
    return region_id


def _day(request: HttpRequest, name: str, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(request.GET[name]) if request.GET.get(name) else default
    except ValueError:
        return default


@login_required
def coverage(request: HttpRequest) -> HttpResponse:
    """Each requesting site x modality x PDS period of a week: covered, partly covered or uncovered."""
    region_id = _coordinator_region(request)
    week_start = _day(request, "week", timezone.now().astimezone(PARIS).date())
    report = coverage_report(region_id=region_id, week_start=week_start)
    rows: dict[tuple[str, str], list] = {}
    for cell in report.cells:
        rows.setdefault((cell.site_name, cell.modality), []).append(cell)
    periods = [c for c in report.cells if c.site_id == report.cells[0].site_id
               and c.modality == report.cells[0].modality] if report.cells else []
    counts = {state: sum(1 for c in report.cells if coverage_state(c) == state) for state in COVERAGE_STATES}
    now = timezone.now()
    return render(request, "rosters/coverage.html", {
        "agreements": agreements_in_force_for_region(region_id=region_id, at=now),
        "queues": provider_queues_for_region(region_id=region_id),
        "report": report, "rows": [(site, mod, [(c, coverage_state(c)) for c in cells])
                                   for (site, mod), cells in rows.items()],
        "periods": periods, "counts": counts,
        "week_start": week_start, "prev_week": week_start - dt.timedelta(days=7),
        "next_week": week_start + dt.timedelta(days=7), "gap_count": len(report.gaps)})


CALENDAR_VIEWS = ("week", "month")


@login_required
def calendar(request: HttpRequest) -> HttpResponse:
    """The region's roster by line, a week or a month: shifts coloured by kind, rule breaches flagged."""
    region_id = _coordinator_region(request)
    view = request.GET.get("view") if request.GET.get("view") in CALENDAR_VIEWS else "week"
    day = _day(request, "day", timezone.now().astimezone(PARIS).date())
    if view == "week":
        first = day - dt.timedelta(days=day.weekday())
        last, prev, following = first + dt.timedelta(days=6), first - dt.timedelta(days=7), first + dt.timedelta(days=7)
    else:
        first = day.replace(day=1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
        last, prev = following - dt.timedelta(days=1), (first - dt.timedelta(days=1)).replace(day=1)
    lines = list(OnCallLine.objects.filter(region_id=region_id, active=True).order_by("name").values_list("pk", "name"))
    line_id = next((pk for pk, _name in lines if str(pk) == request.GET.get("line")), None)
    cal = roster_calendar(region_id=region_id, first_day=first, last_day=last, line_id=line_id)
    return render(request, "rosters/calendar.html", {
        "cal": cal, "view": view, "first": first, "last": last, "prev": prev, "next": following,
        "lines": lines, "line_id": line_id, "kinds": ShiftKind.choices, "roles": dict(ShiftRole.choices)})


def ical_feed(request: HttpRequest, user_id: int, token: str) -> HttpResponse:
    """A radiologist's shifts as iCalendar; the URL carries a per-user secret so calendar apps can poll it."""
    if not hmac.compare_digest(token, ical_token(user_id)):
        raise Http404("Unknown feed")
    user = User.objects.filter(pk=user_id, role=Role.RADIOLOGIST).first()
    if user is None:
        raise Http404("Unknown feed")
    cal = Calendar()
    cal.add("prodid", "-//PDS Platform//rosters//FR")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"PDS – {user.display_name}")
    for s in shifts_for_radiologist(user_id=user.pk, since=timezone.now() - dt.timedelta(days=31)):
        ev = Event()
        ev.add("uid", f"shift-{s.pk}@pds-platform")
        ev.add("dtstamp", s.updated_at)
        ev.add("dtstart", s.start)
        ev.add("dtend", s.end)
        ev.add("summary", f"{s.get_kind_display()} – {s.line.name} ({s.get_role_display()})")
        if s.line.phone:
            ev.add("description", f"Line phone: {s.line.phone}")
        cal.add_component(ev)
    response = HttpResponse(cal.to_ical(), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="pds-{user.username}.ics"'
    return response


@login_required
def my_ical(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Shows the signed-in radiologist the address of their feed."""
    user = request.user
    url = request.build_absolute_uri(f"/rosters/ical/{user.pk}/{ical_token(user.pk)}.ics")
    return HttpResponse(f"{url}\n", content_type="text/plain; charset=utf-8")


class AstreinteChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Shift) -> str:  # type: ignore[override]
        return (f"{obj.line.name} · {obj.start.astimezone(PARIS):%d/%m %H:%M} – "
                f"{obj.end.astimezone(PARIS):%d/%m %H:%M}")


class InterventionForm(forms.Form):
    shift = AstreinteChoiceField(queryset=Shift.objects.none(), label=gettext_lazy("Astreinte"))
    start = forms.DateTimeField(label=gettext_lazy("Left home at"),
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    end = forms.DateTimeField(label=gettext_lazy("Back home at"),
                              widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    note = forms.CharField(label=gettext_lazy("Note"), max_length=300, required=False)


@clinical_login_required
def interventions(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The radiologist records the interventions of their recent astreintes (work time: rest follows)."""
    user = request.user
    if getattr(user, "role", "") != Role.RADIOLOGIST:
        raise PermissionDenied("Astreinte interventions are recorded by the radiologist on astreinte.")
    now = timezone.now()
    astreintes = (Shift.objects.filter(radiologist=user, kind=ShiftKind.ASTREINTE, start__lte=now,
                                       end__gt=now - dt.timedelta(days=3))
                  .select_related("line").order_by("-start"))
    form = InterventionForm(request.POST or None)
    form.fields["shift"].queryset = astreintes  # type: ignore[attr-defined]
    with timezone.override(PARIS):  # the times typed are Paris wall-clock times
        valid = request.method == "POST" and form.is_valid()
    if valid:
        data = form.cleaned_data
        try:
            _intervention, flagged = intervention_record(shift_id=data["shift"].pk, start=data["start"],
                                                        end=data["end"], actor=user, note=data["note"])
        except ApplicationError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Intervention recorded."))
            for shift in flagged:
                messages.warning(request, _("Your shift starting %(start)s now breaks a rest rule: the "
                                            "coordinator will find a replacement.") % {
                    "start": shift.start.astimezone(PARIS).strftime("%d/%m %H:%M")})
            return redirect("rosters:interventions")
    recorded = Intervention.objects.filter(shift__radiologist=user, shift__in=astreintes).select_related("shift__line")
    return render(request, "rosters/interventions.html", {"form": form, "astreintes": astreintes,
                                                          "recorded": recorded})
