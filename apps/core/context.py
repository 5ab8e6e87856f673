"""Who is acting, from where and through which channel, for the audit trail.

Set by the web middleware, the API authentication, the gateway and the
workers; read by ``apps.audit.services.audit_record``. A contextvar keeps it
per request and per thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class ActorContext:
    user_id: int | None = None
    username: str = ""
    role: str = ""
    establishment_id: int | None = None
    ip: str | None = None
    channel: str = "system"  # web | api | gateway | worker | admin | system


_current: ContextVar[ActorContext] = ContextVar("pds_actor", default=ActorContext())  # noqa: B039 (frozen dataclass: immutable)


def current_actor() -> ActorContext:
    return _current.get()


def set_actor(ctx: ActorContext) -> Any:
    return _current.set(ctx)


def reset_actor(token: Any) -> None:
    _current.reset(token)


@contextlib.contextmanager
def acting_as(ctx: ActorContext | None = None, **changes: Any) -> Iterator[ActorContext]:
    base = ctx or _current.get()
    new = replace(base, **changes) if changes else base
    token = _current.set(new)
    try:
        yield new
    finally:
        _current.reset(token)


def actor_from_user(user: Any, *, ip: str | None = None, channel: str = "web") -> ActorContext:
    if user is None or not getattr(user, "is_authenticated", False):
        return ActorContext(ip=ip, channel=channel)
    return ActorContext(
        user_id=user.pk,
        username=user.get_username(),
        role=getattr(user, "role", ""),
        establishment_id=getattr(user, "primary_establishment_id", None),
        ip=ip,
        channel=channel,
    )
