"""The domain's errors: ApplicationError and its kinds, raised by services when a rule refuses an operation.
Mapped to HTTP (RFC 9457 problem documents) in one place, apps.core.problems."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A rule of the domain refused the operation; ``message`` is shown to the user."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None,
                 status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.extra = extra or {}


class NotFoundError(ApplicationError):
    status_code = 404
    code = "not_found"


class ConflictError(ApplicationError):
    status_code = 409
    code = "conflict"


class PermissionDeniedError(ApplicationError):
    status_code = 403
    code = "forbidden"
