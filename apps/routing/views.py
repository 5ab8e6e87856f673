"""In-app notifications: the list a user sees (and polls) and marking one as read."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.decorators import AuthenticatedHttpRequest
from apps.core.redirects import safe_next
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
