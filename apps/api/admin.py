"""Admin for RIS integrations: a key's clear value is shown once, in the message after its creation."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.api.models import ApiKey, WebhookDelivery, WebhookSubscription
from apps.api.services import api_key_revoke, api_key_set_hash
from apps.audit.admin_mixins import RegionScopedAdmin


@admin.register(ApiKey)
class ApiKeyAdmin(RegionScopedAdmin[ApiKey]):
    region_path = "establishment__territory__region"
    list_display = ("name", "establishment", "scope", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("scope",)
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Establishment and scope are fixed once the key exists: issue a new key instead.
        return (*self.readonly_fields, "establishment", "scope") if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        raw = None
        if not change:
            raw = api_key_set_hash(key=obj)
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
        if raw:
            messages.warning(request, _("API key created. Copy it now, it will not be shown again: %(key)s")
                             % {"key": raw})

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            api_key_revoke(key_id=key.pk)
        self.message_user(request, _("Keys revoked."))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: deliveries and audit entries refer to the key


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(RegionScopedAdmin):
    region_path = "establishment__territory__region"
    list_display = ("url", "establishment", "api_key", "active", "created_at")
    list_filter = ("active",)
    readonly_fields = ("api_key", "establishment", "url", "events", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the API by the integration, which receives the secret


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(RegionScopedAdmin):
    region_path = "subscription__establishment__territory__region"
    list_display = ("created_at", "event_type", "subscription", "case", "status", "attempts", "last_status_code",
                    "last_error", "delivered_at")
    list_filter = ("status", "event_type")
    raw_id_fields = ("case", "case_event")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
