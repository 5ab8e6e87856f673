"""User administration. A superuser administers every account; an ARS coordinator manages the accounts of their
region, and nothing that would let them raise their own rights or act as someone else:

- no ``is_superuser``, ``is_staff``, groups or individual permissions (not in their form, so a posted value is
  ignored), and no change of their own role or region;
- no password of another person (the "change password" page is the superuser's), and no authenticator: the
  django-otp device pages are the superuser's (apps.accounts.admin_site.DeviceAdminMixin);
- the accounts of their region only, never a superuser's; a region chosen among their own;
- no revert of an account from its history, for anybody: the history leaves the password out (a revert would
  blank it) and would bring back whatever rights the account once had.

A coordinator creates an account with its initial password (there is no other way in); the holder then enrols
their own authenticator at first login.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from apps.accounts.authorization import access_refused
from apps.accounts.models import Membership, User
from apps.audit.admin_mixins import AuditedAdminMixin
from apps.core.admin_mixins import region_scope_choices, user_region_id


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0

    def formfield_for_foreignkey(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        region_scope_choices(field, db_field.related_model, request)
        return field


PDS_PROFILE = ("role", "region", "rpps", "birth_date", "phone", "subspecialties", "volunteers_over_60",
               "authorised_sites", "trained_on")

# What a coordinator sees of an account: identity, active or not, the PDS profile. No password, no privileges.
COORDINATOR_FIELDSETS = (
    (None, {"fields": ("username",)}),
    (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
    (_("Permissions"), {"fields": ("is_active",)}),
    (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    (_("PDS profile"), {"fields": PDS_PROFILE}),
)


def _is_superuser(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_superuser)


@admin.register(User)
class UserAdmin(AuditedAdminMixin, BaseUserAdmin, SimpleHistoryAdmin):
    list_display = ("username", "last_name", "first_name", "role", "rpps", "is_active")
    list_filter = ("role", "is_active", "memberships__establishment__territory")
    search_fields = ("username", "last_name", "first_name", "rpps", "email")
    inlines = [MembershipInline]
    filter_horizontal = ("authorised_sites", "groups", "user_permissions")
    # ``or ()``: the stubs type ModelAdmin.fieldsets as optional (None, its default); UserAdmin's is a tuple.
    fieldsets = (*(BaseUserAdmin.fieldsets or ()), (_("PDS profile"), {"fields": PDS_PROFILE}))

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None or _is_superuser(request):
            return super().get_fieldsets(request, obj)  # the add form: username and initial password
        return COORDINATOR_FIELDSETS

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if _is_superuser(request) or obj is None:
            return super().get_readonly_fields(request, obj)
        readonly = ["last_login", "date_joined"]
        if obj.pk == request.user.pk:
            readonly += ["role", "region"]  # nobody widens their own perimeter
        return readonly

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        qs = super().get_queryset(request)
        rid = user_region_id(request.user)
        if rid is None:
            return qs
        return (qs.filter(Q(memberships__establishment__territory__region_id=rid) | Q(region_id=rid))
                .exclude(is_superuser=True).distinct())

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        region_scope_choices(field, db_field.related_model, request)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        region_scope_choices(field, db_field.related_model, request)
        return field

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        if not change and not _is_superuser(request):
            # A coordinator's new account belongs to their region (so that they find it again in their list).
            rid = user_region_id(request.user)
            obj.region_id = rid if rid and rid > 0 else None
        super().save_model(request, obj, form, change)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        # Setting someone else's password is logging in as them: the platform's technical administrator only.
        if not _is_superuser(request):
            access_refused(request, reason="rule", status=403, action="change_password",
                           object_type="accounts.user", object_id=id)
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)

    def history_form_view(self, request: HttpRequest, object_id: str, version_id: str,
                          extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "POST":
            # See the module docstring: an account is never reverted from its history.
            access_refused(request, reason="rule", status=403, action="revert", object_type="accounts.user",
                           object_id=object_id, details={"history_id": version_id})
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True
