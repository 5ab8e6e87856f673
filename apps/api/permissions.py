"""Who may do what through the API. Data scoping (which rows) lives in apps.api.selectors."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from apps.api.authentication import Integration

# Web users who may create or cancel requests through the API with their session.
WRITER_ROLES = {"emergency_physician", "establishment_admin", "radiographer"}


def can_write(user: Any) -> bool:
    if isinstance(user, Integration):
        return user.can_write
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "role", "") in WRITER_ROLES)


class ScopedAccess(permissions.BasePermission):
    """Authenticated; unsafe methods need a read-write key (or a writer role for sessions)."""

    message = "This API key is read-only."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not getattr(user, "is_authenticated", False):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return can_write(user)


class IntegrationOnly(permissions.BasePermission):
    """Webhook subscriptions belong to an integration key."""

    message = "Webhook subscriptions are managed with an API key."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, Integration)
