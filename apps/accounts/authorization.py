"""Enforcing the permission matrix (apps.accounts.matrix) on the web, and auditing every refusal.

- :class:`PermissionMatrixMiddleware` checks every resolved route before its view runs: pages, the Django admin,
  third-party views alike, so that a new view cannot forget the check. Routes served by DRF are left to
  :class:`apps.api.permissions.MatrixPermission` (same table), because only DRF knows the API key's principal.
- :func:`access_refused` and :func:`object_refused` write the refusal to the audit trail (action
  ``access_refused``): a role the matrix refuses, an object outside the principal's perimeter, a rule of a
  service that refuses the act. The answer stays what it was: a 404 for an object that does not exist and for
  one that is not the caller's (same status, same body); only the trail, which the caller never reads, says
  which it was and whose object it is. Both cases do the same work (one lookup, one audit row).

A refusal is written outside any transaction that the refusal itself rolls back: callers audit where the
exception is caught, or before raising it from code that runs in autocommit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.apps import apps as django_apps
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Model
from django.http import HttpRequest, HttpResponse

from apps.accounts import matrix
from apps.audit.services import audit_record

ACCESS_REFUSED = "access_refused"


def _route(request: Any) -> str:
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else ""


def access_refused(request: Any, *, reason: str, status: int, action: str = "", object_type: str = "",
                   object_id: Any = "", details: dict[str, Any] | None = None) -> None:
    """One audit row for a refused access. ``reason``: ``role`` (the matrix), ``not_visible`` (an object
    outside the perimeter), ``not_found`` (no such object), ``rule`` (a service refused the act)."""
    audit_record(action=ACCESS_REFUSED, object_type=object_type, object_id=object_id, patient_data=False,
                 details={"reason": reason, "status": status, "route": _route(request), "action": action,
                          "method": getattr(request, "method", ""), "path": getattr(request, "path", "")[:300],
                          **(details or {})})


def object_refused(request: Any, *, model: type[Model] | str, lookup: dict[str, Any],
                   site_field: str | None = "site_id", action: str = "") -> None:
    """Audits a lookup that found nothing the principal may see (the caller then answers 404).

    ``model`` is a model or its label (``"worklist.case"``, for a lower layer that does not import it). The
    trail records whether the object exists and, with ``site_field``, the establishment it belongs to: a probe
    of another establishment's identifiers shows up as such."""
    if isinstance(model, str):
        model = django_apps.get_model(model)
    fields = ["pk", site_field] if site_field else ["pk"]
    try:
        # A savepoint: a value the database rejects (an integer out of range) must not break the caller's
        # transaction, if there is one.
        with transaction.atomic():
            row = model._base_manager.filter(**lookup).values_list(*fields).first()
    except (ValidationError, ValueError, TypeError, OverflowError, DatabaseError):
        row = None  # a malformed identifier names no object
    details: dict[str, Any] = {"lookup": {k: str(v)[:100] for k, v in lookup.items()}, "exists": row is not None}
    if row is not None and site_field:
        details["object_establishment_id"] = row[1]
    access_refused(request, reason="not_visible" if row is not None else "not_found", status=404, action=action,
                   object_type=f"{model._meta.app_label}.{model._meta.model_name}",
                   object_id=row[0] if row is not None else "", details=details)


def _is_drf_view(view_func: Callable[..., Any]) -> bool:
    from rest_framework.views import APIView

    cls = getattr(view_func, "cls", None)
    return isinstance(cls, type) and issubclass(cls, APIView)


def web_action(request: HttpRequest, view_kwargs: dict[str, Any]) -> str:
    """The matrix action of a web request: the case action's name, otherwise view/submit by method."""
    match = request.resolver_match
    if match is not None and match.view_name == "worklist:action" and request.method not in matrix.SAFE_METHODS:
        return str(view_kwargs.get("name", ""))
    return matrix.action_for_method(request.method or "GET")


class PermissionMatrixMiddleware:
    """Refuses, before the view runs, a route the principal's roles may not use: the login page for an anonymous
    visitor, 403 (audited) for a signed-in user. Placed after the authentication and audit-context middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Callable[..., Any], view_args: tuple[Any, ...],
                     view_kwargs: dict[str, Any]) -> HttpResponse | None:
        if _is_drf_view(view_func):
            return None  # apps.api.permissions.MatrixPermission, once DRF knows who is calling
        route = _route(request)
        action = web_action(request, view_kwargs)
        if matrix.is_allowed(request.user, route, action):
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        access_refused(request, reason="role", status=403, action=action)
        raise PermissionDenied
