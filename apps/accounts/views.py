"""Login in two steps: password, then a TOTP code from the user's authenticator app (django-otp).

A professional without a device enrols one first. Until the code is accepted the session reaches nothing but
these steps (apps.accounts.middleware). ``settings.PDS_DEMO_SKIP_2FA`` (embedded demo only, forced off when
DEBUG is off) skips the second step.

Brute force: django-axes locks a (username, client address) pair after repeated failures, and an address that
fails too many logins whatever the username gets a 429 page (apps.accounts.throttle).
"""

from __future__ import annotations

import base64
import io
import logging

from django import forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user
from django_otp import login as otp_login

from apps.accounts import services
from apps.accounts.decorators import (
    has_confirmed_device,
    second_factor_skipped,
    second_factor_url,
    second_factor_verified,
)
from apps.accounts.throttle import login_ip_throttled, login_ip_window
from apps.audit.services import audit_record
from apps.core.redirects import safe_next

log = logging.getLogger(__name__)


class TokenForm(forms.Form):
    token = forms.CharField(label=_("6-digit code"), max_length=8,
                            widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                                          "autofocus": True}))


def _next(request: HttpRequest) -> str:
    from django.conf import settings

    return safe_next(request, settings.LOGIN_REDIRECT_URL)


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = False

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if login_ip_throttled(request):
            # No password is checked: the address has used up its failures for this cool-off.
            log.warning("login throttled for this client address")
            response = render(request, "accounts/login_throttled.html",
                              {"minutes": int(login_ip_window().total_seconds() // 60)}, status=429)
            response["Retry-After"] = str(int(login_ip_window().total_seconds()))
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)  # the audit app's login signal records this step
        if second_factor_skipped():
            return response
        return redirect(second_factor_url(self.request, self.get_success_url()))


@login_required
def otp_verify(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        for device in devices_for_user(request.user, confirmed=True):
            if device.verify_token(form.cleaned_data["token"].strip()):
                otp_login(request, device)
                audit_record(action="login", obj=request.user, details={"step": "totp"})
                return redirect(_next(request))
        audit_record(action="login_failed", obj=request.user, details={"step": "totp"})
        form.add_error("token", _("Wrong or expired code."))
    return render(request, "accounts/otp_verify.html", {"form": form, "next": _next(request)})


@login_required
def otp_setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: show the secret (QR code and text), confirm with a first code.

    A user who already has a confirmed authenticator enrols a new one (which then replaces it) only from a session
    verified with that authenticator: with the password alone, this page would hand a second factor to whoever
    has the password.
    """
    reenrol = has_confirmed_device(request.user)
    if reenrol and not second_factor_verified(request):
        services.otp_enrolment_refused(user=request.user)
        return redirect(second_factor_url(request, _next(request)))
    device = services.otp_enrolment_device(user=request.user)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"].strip()):
            services.otp_enrolment_confirm(user=request.user, device=device)
            otp_login(request, device)  # the session is now verified by the new device (the old ones are gone)
            return redirect(_next(request))
        form.add_error("token", _("Wrong or expired code."))
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage)
    buf = io.BytesIO()
    img.save(buf)
    secret = base64.b32encode(device.bin_key).decode()
    return render(request, "accounts/otp_setup.html", {
        "form": form, "next": _next(request), "qr_svg": buf.getvalue().decode(), "secret": secret, "reenrol": reenrol})
