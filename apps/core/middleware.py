from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.core.context import actor_from_user, reset_actor, set_actor


def client_ip(request: HttpRequest) -> str | None:
    # Behind the production reverse proxy the first X-Forwarded-For hop is the client.
    fwd = request.META.get("HTTP_X_FORWARDED_FOR")
    if fwd:
        return fwd.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR")


class RequestContextMiddleware:
    """Publishes the acting user to the audit context for the duration of a request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        channel = "api" if request.path.startswith("/api/") else (
            "admin" if request.path.startswith("/admin/") else "web")
        token = set_actor(actor_from_user(getattr(request, "user", None), ip=client_ip(request), channel=channel))
        try:
            return self.get_response(request)
        finally:
            reset_actor(token)
