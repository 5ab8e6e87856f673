"""The admin site with the second factor (django-otp's OTPAdminSite rule, through the platform's own login).

``VerifiedAdminConfig`` replaces ``django.contrib.admin`` in INSTALLED_APPS so that ``admin.site`` (and every
``@admin.register``) is a :class:`VerifiedAdminSite`:

- ``has_permission`` also requires a verified session (django-otp's ``is_verified()``), or the embedded demo's
  PDS_DEMO_SKIP_2FA, the same rule as the rest of the platform (apps.accounts.decorators.second_factor_ok);
- ``/admin/login/`` is not a login form any more: it sends the browser to the platform's two-step login, so a
  password posted there logs nobody in.

Authenticator devices (django-otp's own admin pages) are another person's second factor: only a superuser may
see or change them (a coordinator could otherwise read a radiologist's TOTP secret or QR code), and every change
or removal is an audited security event (apps.accounts.services).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

# This module is imported while the app registry loads (INSTALLED_APPS names VerifiedAdminConfig): anything that
# imports models (apps.accounts.decorators, django-otp, the services) is imported where it is used.


class VerifiedAdminSite(AdminSite):
    def has_permission(self, request: HttpRequest) -> bool:
        from apps.accounts.decorators import second_factor_ok

        return super().has_permission(request) and second_factor_ok(request)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # The admin index redirects here when has_permission() is false: a logged-in user without admin rights
        # (or without the second factor) gets the platform login, which is the only place to authenticate.
        index = reverse("admin:index", current_app=self.name)
        return redirect(f"{reverse('accounts:login')}?{urlencode({'next': index})}")


class DeviceAdminMixin:
    """Mixed into django-otp's device admins: superusers only, changes and removals audited."""

    def _superuser(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._superuser(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._superuser(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        from apps.accounts.services import otp_device_saved_by_admin

        super().save_model(request, obj, form, change)  # type: ignore[misc]
        otp_device_saved_by_admin(device=obj, created=not change, fields=sorted(form.changed_data))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        from apps.accounts.services import otp_device_remove

        otp_device_remove(device=obj, via="admin")

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        from apps.accounts.services import otp_device_remove

        for device in queryset:
            otp_device_remove(device=device, via="admin bulk")


def guard_device_admins(site: AdminSite) -> None:
    """Wrap whatever admin class is registered for each django-otp device model (after autodiscover)."""
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    for model in (TOTPDevice, StaticDevice):
        current = site._registry.get(model)
        if current is None or isinstance(current, DeviceAdminMixin):
            continue
        guarded = type(f"Guarded{type(current).__name__}", (DeviceAdminMixin, type(current)), {})
        site.unregister(model)
        site.register(model, guarded)


class VerifiedAdminConfig(AdminConfig):
    default_site = "apps.accounts.admin_site.VerifiedAdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscover: every app's admin.py has registered by now
        from django.contrib import admin

        guard_device_admins(admin.site)

