"""Problem documents (RFC 9457, application/problem+json) for API errors: never an HTML page or a bare 500.

Two entry points share one shape: ``api_exception_handler`` (DRF's exception handler, for every error raised
in an API view) and ``django_problem`` (for Django's error handlers, apps.core.views, which answer for any path
under /api/ that never reached a DRF view: an unknown URL or a malformed identifier the URLconf does not
match, a body Django refuses before the view, an unexpected error).

Statuses: 400 the request does not match the operation's schema (serializers, apps.api.query); 413 its body
is larger than DATA_UPLOAD_MAX_MEMORY_SIZE; 422 it does match, but a rule of the domain refuses it (model
validation such as an INS key, an ApplicationError raised with 422); the others as DRF raises them.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from apps.core.errors import ApplicationError

PROBLEM_CONTENT_TYPE = "application/problem+json"
# The machine interfaces: the REST API and DICOMweb (problem documents, API keys, no login redirects).
API_PATH_PREFIXES = ("/api/", "/dicomweb/")


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PATH_PREFIXES)


def problem_body(status_code: int, title: str, detail: str, errors: Any = None, code: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"type": f"about:blank#{code or status_code}", "title": title,
                            "status": status_code, "detail": detail}
    if errors:
        body["errors"] = errors
    return body


def _problem(status_code: int, title: str, detail: str, errors: Any = None, code: str = "") -> Response:
    # Passed to the constructor: DRF overwrites a Content-Type header set afterwards with the renderer's.
    return Response(problem_body(status_code, title, detail, errors, code), status=status_code,
                    content_type=PROBLEM_CONTENT_TYPE)


def django_problem(status_code: int, title: str, detail: str, code: str = "") -> JsonResponse:
    """The same document outside DRF (Django's error handlers)."""
    return JsonResponse(problem_body(status_code, title, detail, None, code), status=status_code,
                        content_type=PROBLEM_CONTENT_TYPE)


TOO_LARGE_DETAIL = "The request body is larger than the platform accepts."


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return _problem(exc.status_code, exc.code.replace("_", " ").capitalize(), exc.message,
                        exc.extra or None, exc.code)
    if isinstance(exc, DjangoValidationError):
        # Raised by a service's model validation: the request had the documented shape (the serializer
        # passed it) but a rule of the domain refuses a value, e.g. an INS whose key is wrong.
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return _problem(422, "Unprocessable request", "A value is refused by a rule of the platform.", errors,
                        "unprocessable")
    if isinstance(exc, RequestDataTooBig):
        return _problem(413, "Content too large", TOO_LARGE_DETAIL, None, "too_large")
    if isinstance(exc, SuspiciousOperation):
        return _problem(400, "Bad request", "The request is malformed.", None, "bad_request")
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
