"""Login in two steps: password (django-axes locks the username after repeated failures), then a TOTP
code from the user's authenticator app (django-otp). A professional without a device enrols one first.
``settings.PDS_DEMO_SKIP_2FA`` (embedded demo only, forced off when DEBUG is off) skips the second step.
"""

from __future__ import annotations

import base64
import io

from django import forms
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.audit.services import audit_record


class TokenForm(forms.Form):
    token = forms.CharField(label=_("6-digit code"), max_length=8,
                            widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                                          "autofocus": True}))


def _next(request: HttpRequest) -> str:
    nxt = request.POST.get("next") or request.GET.get("next") or ""
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}):
        return nxt
    return settings.LOGIN_REDIRECT_URL


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = False

    def form_valid(self, form: auth_views.AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)  # the audit app's login signal records this step
        if getattr(settings, "PDS_DEMO_SKIP_2FA", False):
            return response
        has_device = any(True for _ in devices_for_user(self.request.user, confirmed=True))
        target = "accounts:otp_verify" if has_device else "accounts:otp_setup"
        from django.urls import reverse

        return redirect(f"{reverse(target)}?next={self.get_success_url()}")


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
    """Enrol an authenticator app: show the secret (QR code and text), confirm with a first code."""
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=request.user, name="authenticator", confirmed=False)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"].strip()):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            audit_record(action="otp_enrol", obj=request.user)
            return redirect(_next(request))
        form.add_error("token", _("Wrong or expired code."))
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage)
    buf = io.BytesIO()
    img.save(buf)
    secret = base64.b32encode(device.bin_key).decode()
    return render(request, "accounts/otp_setup.html", {
        "form": form, "next": _next(request), "qr_svg": buf.getvalue().decode(), "secret": secret})
