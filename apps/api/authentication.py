"""API key authentication: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

The authenticated principal is an :class:`Integration` (not a user account); it is published
to the audit context so that every audit entry of the request names the key and its establishment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.api.models import ApiKey
from apps.core.context import ActorContext, set_actor
from apps.core.middleware import client_ip


@dataclass(frozen=True)
class Integration:
    """A RIS integration authenticated by its key, scoped to one establishment."""

    key_id: int
    name: str
    establishment_id: int
    can_write: bool
    prefix: str = ""  # random part of the key: throttle counters never collide across databases

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = None
    role = "integration"

    def get_username(self) -> str:
        return f"api-key:{self.key_id}:{self.name}"[:150]


def raw_key_from(request: Request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    key = request.META.get("HTTP_X_API_KEY", "")
    return key.strip() or None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Integration, ApiKey] | None:
        raw = raw_key_from(request)
        if raw is None:
            return None
        from apps.api.services import api_key_authenticate

        key = api_key_authenticate(raw)
        if key is None or key.revoked_at is not None:
            _audit_key_refused(request, key)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        principal = Integration(key_id=key.pk, name=key.name, establishment_id=key.establishment_id,
                                can_write=key.can_write, prefix=key.prefix)
        # The middleware resets the context at the end of the request (its own token).
        set_actor(ActorContext(user_id=None, username=principal.get_username(), role="integration",
                               establishment_id=key.establishment_id, ip=client_ip(request), channel="api"))
        return principal, key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="pds-api"'


def _audit_key_refused(request: Request, key: ApiKey | None) -> None:
    """A failed API authentication is a security event (ASVS V16): which key (the prefix only, never the
    secret), from where, on which path. An unknown key is recorded without any part of what was sent."""
    from apps.audit.services import audit_record

    actor = ActorContext(user_id=None, username="api-key:unknown" if key is None else f"api-key:{key.pk}",
                         role="integration", establishment_id=None if key is None else key.establishment_id,
                         ip=client_ip(request), channel="api")
    audit_record(action="login_failed", actor=actor, object_type="api.apikey",
                 object_id="" if key is None else key.pk,
                 details={"reason": "unknown key" if key is None else "revoked key",
                          "method": request.method, "path": request.path[:200]})


class SessionAuthentication(authentication.SessionAuthentication):
    """Session auth for the web app; publishes the user with channel "api" (the middleware ran before DRF
    resolved the user for some paths)."""

    def authenticate(self, request: Request) -> Any:
        result = super().authenticate(request)
        if result is not None:
            from apps.core.context import actor_from_user

            set_actor(actor_from_user(result[0], ip=client_ip(request), channel="api"))
        return result
