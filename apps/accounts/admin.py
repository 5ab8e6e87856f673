from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from apps.accounts.models import Membership, User
from apps.core.admin_mixins import AuditedAdminMixin, _scope_choices, user_region_id


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0

    def formfield_for_foreignkey(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        _scope_choices(field, db_field.related_model, request)
        return field


@admin.register(User)
class UserAdmin(AuditedAdminMixin, BaseUserAdmin, SimpleHistoryAdmin):
    list_display = ("username", "last_name", "first_name", "role", "rpps", "is_active")
    list_filter = ("role", "is_active", "memberships__establishment__territory")
    search_fields = ("username", "last_name", "first_name", "rpps", "email")
    inlines = [MembershipInline]
    filter_horizontal = ("authorised_sites", "groups", "user_permissions")
    fieldsets = (*BaseUserAdmin.fieldsets, (_("PDS profile"), {"fields": (
        "role", "region", "rpps", "birth_date", "phone", "subspecialties", "volunteers_over_60",
        "authorised_sites", "trained_on")}))

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        qs = super().get_queryset(request)
        rid = user_region_id(request.user)
        if rid is None:
            return qs
        from django.db.models import Q

        return qs.filter(Q(memberships__establishment__territory__region_id=rid) | Q(region_id=rid)).distinct()

    def formfield_for_manytomany(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        _scope_choices(field, db_field.related_model, request)
        return field
