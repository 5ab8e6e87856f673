"""In-app notifications (the list a user sees and polls, marking one read) and the coordinator's console."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.accounts.decorators import AuthenticatedHttpRequest, clinical_login_required
from apps.accounts.models import Role
from apps.audit.services import audit_record
from apps.core.errors import ApplicationError
from apps.core.redirects import safe_next
from apps.routing.coordinator import (
    assignable_radiologists,
    case_assign_by_coordinator,
    cases_waiting_on_coordinator,
    last_reasons,
    on_duty_in_region,
)
from apps.routing.models import Channel, Notification
from apps.routing.selectors import unread_notifications
from apps.routing.services import notification_mark_read


@login_required
def notifications(request: AuthenticatedHttpRequest) -> HttpResponse:
    items = (Notification.objects.filter(user_id=request.user.pk, channel=Channel.IN_APP)
             .select_related("case")[:50])
    return render(request, "routing/notifications.html", {"items": items})


@login_required
def notifications_json(request: AuthenticatedHttpRequest) -> JsonResponse:
    """For the live worklist: the unread in-app notifications, newest first."""
    items = unread_notifications(user_id=request.user.pk)[:20]
    return JsonResponse({"unread": unread_notifications(user_id=request.user.pk).count(), "items": [
        {"id": n.pk, "kind": n.kind, "title": n.title, "body": n.body, "case_id": n.case_id,
         "created_at": n.created_at.isoformat()} for n in items]})


@login_required
@require_POST
def notification_read(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    notification_mark_read(notification_id=pk, user=request.user)
    return redirect(safe_next(request, "routing:notifications"))


def _coordinator_region(request: AuthenticatedHttpRequest) -> int:
    user = request.user
    if getattr(user, "role", "") != Role.ARS_COORDINATOR or user.region_id is None:
        raise PermissionDenied("The console is the regional coordinator's.")
    return user.region_id


@clinical_login_required
def console(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Cases waiting on the coordinator (with why), who is on duty now, and one-click assignment."""
    region_id = _coordinator_region(request)
    now = timezone.now()
    cases = list(cases_waiting_on_coordinator(region_id=region_id))
    reasons = last_reasons([c.pk for c in cases])
    rows = [(c, reasons.get(c.pk, []), assignable_radiologists(c, at=now)) for c in cases]
    audit_record(action="list", object_type="worklist.case", patient_data=True,
                 details={"view": "coordinator console", "cases": [c.pk for c in cases]})
    return render(request, "routing/console.html", {"rows": rows,
                                                    "on_duty": on_duty_in_region(region_id=region_id, at=now)})


@clinical_login_required
@require_POST
def console_assign(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    _coordinator_region(request)
    try:
        radiologist_id = int(request.POST.get("radiologist", ""))
    except ValueError:
        messages.error(request, _("Choose a radiologist."))
        return redirect("routing:console")
    try:
        case = case_assign_by_coordinator(case_id=pk, radiologist_id=radiologist_id,
                                          reason=request.POST.get("reason", ""), actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        assert case.assigned_to is not None  # just assigned
        messages.success(request, _("Case #%(case)s offered to %(who)s.") % {
            "case": case.pk, "who": case.assigned_to.display_name})
    return redirect("routing:console")
