from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.core.context import actor_from_user, reset_actor, set_actor
from apps.core.net import client_ip  # X-Forwarded-For only from trusted proxies (apps/core/net.py)
from apps.core.problems import API_PATH_PREFIXES

__all__ = ["RequestContextMiddleware", "client_ip"]


class RequestContextMiddleware:
    """Publishes the acting user to the audit context for the duration of a request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        channel = "api" if request.path.startswith(API_PATH_PREFIXES) else (
            "admin" if request.path.startswith("/admin/") else "web")
        token = set_actor(actor_from_user(getattr(request, "user", None), ip=client_ip(request), channel=channel))
        try:
            return self.get_response(request)
        finally:
            reset_actor(token)
