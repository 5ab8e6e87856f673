"""The second factor everywhere (ASVS 5.0 V6.3, PGSSI-S): a password alone opens no page.

The password step of the login already authenticates the session (Django's ``login``); the session becomes
*verified* only once the TOTP code is accepted (django-otp's ``otp_login``). Until then, whatever the URL, the
request reaches only:

- the login steps themselves: the password form, the code step, enrolment (the view refuses enrolment to a user
  who already has a confirmed authenticator), logout;
- what an anonymous visitor may see anyway: static files, ``/healthz``, the language switch.

Everything else is refused here, before any view runs, so that a new view cannot forget the check: HTML pages
redirect to the second-factor step, the API (``/api/…``) answers a 403 problem document, and the web app's own
JSON endpoints (live polling, draft autosave) a 401 that makes the page reload into the redirect.

Machine credentials are not sessions: a request carrying an API key is left to the API's own authentication,
which then ignores the session entirely (``ApiKeyAuthentication`` comes first and fails hard on a bad key).

The embedded demo's ``PDS_DEMO_SKIP_2FA`` is honoured exactly as the login view honours it
(:func:`apps.accounts.decorators.second_factor_ok`); settings.py forces it off whenever DEBUG is off.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve

from apps.accounts.decorators import second_factor_ok, second_factor_url
from apps.core.problems import API_PATH_PREFIXES

# URL names an authenticated but unverified session may reach. Anything else, including a URL that does not
# resolve, is refused (no 404 page either: it would tell a password-only session which URLs exist).
UNVERIFIED_ALLOWED: frozenset[str] = frozenset({
    "accounts:login", "accounts:otp_verify", "accounts:otp_setup", "accounts:logout",
    "healthz", "set_language",
})


def api_key_presented(request: HttpRequest) -> bool:
    """Mirrors apps.api.authentication.raw_key_from (which this lower layer may not import): when it finds a key,
    DRF authenticates the request by that key alone and never looks at the session."""
    if request.META.get("HTTP_AUTHORIZATION", "")[:7].lower() == "bearer ":
        return True
    return bool(request.META.get("HTTP_X_API_KEY", "").strip())


def unverified_may_reach(request: HttpRequest) -> bool:
    path = request.path_info
    if settings.STATIC_URL and path.startswith(settings.STATIC_URL):
        return True
    try:
        match = resolve(path, urlconf=getattr(request, "urlconf", None))
    except Resolver404:
        return False
    return match.view_name in UNVERIFIED_ALLOWED


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return ("application/json" in accept and "text/html" not in accept) or \
        request.content_type == "application/json"


class SecondFactorMiddleware:
    """Placed after django_otp's OTPMiddleware (which gives ``request.user.is_verified``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (user is None or not user.is_authenticated or second_factor_ok(request)
                or unverified_may_reach(request)
                # Only the API authenticates by key: on a web page the header would be a way around the check.
                or (request.path_info.startswith(API_PATH_PREFIXES) and api_key_presented(request))):
            return self.get_response(request)
        return self.refuse(request)

    @staticmethod
    def refuse(request: HttpRequest) -> HttpResponse:
        # Only a page the user was trying to see is worth coming back to after the code.
        come_back = request.get_full_path() if request.method in ("GET", "HEAD") else ""
        if request.path_info.startswith(API_PATH_PREFIXES):
            response = JsonResponse({
                "type": "about:blank#second_factor_required", "title": "Second factor required",
                "status": 403, "detail": "This session has not completed the second factor of the login. "
                                         "Enter the authenticator code first, or use an API key.",
                "login_url": second_factor_url(request)}, status=403)
            response["Content-Type"] = "application/problem+json"
            return response
        if _wants_json(request):
            return JsonResponse({"ok": False, "error": "second factor required",
                                 "login_url": second_factor_url(request, come_back)}, status=401)
        return redirect(second_factor_url(request, come_back))
