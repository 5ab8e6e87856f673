"""Coordinator's coverage page and each radiologist's iCal feed."""

from __future__ import annotations

import datetime as dt
import hmac

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from icalendar import Calendar, Event

from apps.accounts.decorators import AuthenticatedHttpRequest
from apps.accounts.models import Role, User
from apps.core.admin_mixins import user_region_id
from apps.regions.calendar import PARIS
from apps.rosters.selectors import coverage_report, ical_token, shifts_for_radiologist


@login_required
def coverage(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not (user.is_superuser or getattr(user, "role", "") == Role.ARS_COORDINATOR):  # type: ignore[union-attr]
        raise PermissionDenied("The coverage report is for the regional coordinator.")
    region_id = user_region_id(user)
    if region_id is None:
        from apps.regions.models import Region

        first = Region.objects.order_by("pk").first()
        region_id = first.pk if first else None
    if region_id is None or region_id < 0:
        raise Http404("No region")
    today = timezone.now().astimezone(PARIS).date()
    try:
        week_start = dt.date.fromisoformat(request.GET.get("week", "")) if request.GET.get("week") else today
    except ValueError:
        week_start = today
    report = coverage_report(region_id=region_id, week_start=week_start)
    rows: dict[tuple[str, str], list] = {}
    for cell in report.cells:
        rows.setdefault((cell.site_name, cell.modality), []).append(cell)
    periods = [c for c in report.cells if c.site_id == report.cells[0].site_id
               and c.modality == report.cells[0].modality] if report.cells else []
    return render(request, "rosters/coverage.html", {
        "report": report, "rows": [(site, mod, cells) for (site, mod), cells in rows.items()], "periods": periods,
        "week_start": week_start, "prev_week": week_start - dt.timedelta(days=7),
        "next_week": week_start + dt.timedelta(days=7), "gap_count": len(report.gaps)})


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
