"""Access to clinical pages: logged in, and second factor verified (unless the embedded demo skips it)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


def second_factor_ok(request: HttpRequest) -> bool:
    user = request.user
    if getattr(settings, "PDS_DEMO_SKIP_2FA", False):
        return True
    return bool(getattr(user, "is_verified", lambda: False)())


def clinical_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not second_factor_ok(request):
            from django_otp import devices_for_user

            has_device = any(True for _ in devices_for_user(request.user, confirmed=True))
            target = "accounts:otp_verify" if has_device else "accounts:otp_setup"
            return redirect(f"{_reverse(target)}?next={request.get_full_path()}")
        return view(request, *args, **kwargs)

    return wrapper


def _reverse(name: str) -> str:
    from django.urls import reverse

    return reverse(name)
