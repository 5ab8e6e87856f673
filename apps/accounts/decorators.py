"""Access to clinical pages: logged in, and second factor verified (unless the embedded demo skips it).

:class:`apps.accounts.middleware.SecondFactorMiddleware` enforces the same rule for every URL; the decorator
stays on the clinical views as a second, local guard.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse

if TYPE_CHECKING:
    from apps.accounts.models import User

# What the view answers: a page (HttpResponse) or a file (FileResponse, streamed).
R = TypeVar("R", bound=HttpResponseBase)


class AuthenticatedHttpRequest(HttpRequest):
    """What a view behind :func:`clinical_login_required` (or Django's ``login_required``) receives: a
    request whose user is signed in. django-stubs types ``request.user`` as ``User | AnonymousUser``;
    annotating the view's request with this class states what the decorator guarantees (django-stubs'
    documented idiom). A type only: Django still passes its own HttpRequest."""

    user: User


def second_factor_skipped() -> bool:
    """The embedded demo's PDS_DEMO_SKIP_2FA: settings.py forces it off whenever DEBUG is off, and the
    accounts system check refuses a configuration where it is on in production."""
    return bool(getattr(settings, "PDS_DEMO_SKIP_2FA", False))


def second_factor_verified(request: HttpRequest) -> bool:
    """The session's login was completed with an authenticator code. ``is_verified()`` is put on the user by
    django-otp's OTPMiddleware (settings.MIDDLEWARE), an attribute the type stubs cannot know of."""
    return bool(getattr(request.user, "is_verified", lambda: False)())


def second_factor_ok(request: HttpRequest) -> bool:
    if second_factor_skipped():
        return True
    return second_factor_verified(request)


def has_confirmed_device(user: Any) -> bool:
    from django_otp import devices_for_user

    return any(True for _ in devices_for_user(user, confirmed=True))


def second_factor_url(request: HttpRequest, next_path: str = "") -> str:
    """The step that completes this session's login: the code of an enrolled authenticator, or enrolment."""
    target = reverse("accounts:otp_verify" if has_confirmed_device(request.user) else "accounts:otp_setup")
    return f"{target}?{urlencode({'next': next_path})}" if next_path else target


def clinical_login_required(view: Callable[..., R]) -> Callable[..., R | HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> R | HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not second_factor_ok(request):
            return redirect(second_factor_url(request, request.get_full_path()))
        return view(request, *args, **kwargs)

    return wrapper
