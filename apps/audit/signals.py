"""Login, logout and failed-login entries in the audit trail.

Django's auth signals are used here (not for business logic): authentication happens inside
``django.contrib.auth`` and this is the only hook it offers.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from apps.audit.services import audit_record
from apps.core.context import actor_from_user
from apps.core.net import client_ip


def _ip(request: Any) -> str | None:
    return client_ip(request) if request is not None else None


@receiver(user_logged_in, dispatch_uid="audit_login")
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(action="login", obj=user, actor=actor_from_user(user, ip=_ip(request), channel="web"))


@receiver(user_logged_out, dispatch_uid="audit_logout")
def audit_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    audit_record(action="logout", obj=user, actor=actor_from_user(user, ip=_ip(request), channel="web"))


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def audit_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    from apps.core.context import ActorContext

    username = str(credentials.get("username", ""))[:150]
    audit_record(action="login_failed", object_type="accounts.user", object_repr=username,
                 actor=ActorContext(username=username, ip=_ip(request), channel="web"),
                 details={"username": username})
