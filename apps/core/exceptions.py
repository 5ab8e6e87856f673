"""DRF exception handler: every error is an RFC 9457 problem document, never a bare 500 for bad input."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from apps.core.errors import ApplicationError


def _problem(status_code: int, title: str, detail: str, errors: Any = None, code: str = "") -> Response:
    body: dict[str, Any] = {"type": f"about:blank#{code or status_code}", "title": title,
                            "status": status_code, "detail": detail}
    if errors:
        body["errors"] = errors
    # Passed to the constructor: DRF overwrites a Content-Type header set afterwards with the renderer's.
    return Response(body, status=status_code, content_type="application/problem+json")


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return _problem(exc.status_code, exc.code.replace("_", " ").capitalize(), exc.message,
                        exc.extra or None, exc.code)
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return _problem(400, "Invalid input", "The request has invalid fields.", errors, "invalid")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        return _problem(status.HTTP_400_BAD_REQUEST, "Invalid input", "The request has invalid fields.",
                        data if isinstance(data, dict) else {"non_field_errors": data}, "invalid")
    detail = data.get("detail", "") if isinstance(data, dict) else str(data)
    problem = _problem(response.status_code, str(getattr(exc, "default_code", "error")).replace("_", " ").capitalize(),
                       str(detail), None, str(getattr(exc, "default_code", "")))
    for header in ("WWW-Authenticate", "Retry-After", "Allow"):
        if header in response:
            problem[header] = response[header]
    return problem
