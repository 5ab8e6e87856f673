from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views import defaults

from apps.core.problems import TOO_LARGE_DETAIL, django_problem, is_api_request


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each user to the screen of their role (ROLE_HOME is extended by the apps that own those screens)."""
    target = ROLE_HOME.get(getattr(request.user, "role", ""), "admin:index")
    return redirect(target)


# role -> URL name of that role's landing page.
ROLE_HOME: dict[str, str] = {}


# --- Error handlers (pds_platform/urls.py): problem documents under /api/, Django's pages elsewhere ----------

def error_400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_request(request):
        return defaults.bad_request(request, exception)  # type: ignore[arg-type]
    if isinstance(exception, RequestDataTooBig):
        return django_problem(413, "Content too large", TOO_LARGE_DETAIL, "too_large")
    return django_problem(400, "Bad request", "The request is malformed.", "bad_request")


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_request(request):
        return defaults.permission_denied(request, exception)  # type: ignore[arg-type]
    return django_problem(403, "Permission denied", "You do not have permission to perform this action.",
                          "permission_denied")


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_request(request):
        return defaults.page_not_found(request, exception)  # type: ignore[arg-type]
    # No API route matches the path: an unknown URL, or an identifier its route's pattern refuses.
    return django_problem(404, "Not found", "No API operation at this path: check it against /api/schema/.",
                          "not_found")


def error_500(request: HttpRequest) -> HttpResponse:
    if not is_api_request(request):
        return defaults.server_error(request)
    return django_problem(500, "Server error", "The platform failed to answer; the error is logged.",
                          "server_error")
