"""Who may do what through the API: the permission matrix (apps.accounts.matrix), read by one DRF permission.

Data scoping (which rows) lives in apps.api.selectors. A role the matrix refuses gets 403 (the same for every
identifier, so nothing is learnt about objects) and the refusal is audited; an API key's scope (read or
read-write) is a role of the matrix (``integration`` / ``integration_rw``).
"""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from apps.accounts import matrix
from apps.accounts.authorization import access_refused


def request_action(request: Request, view: Any) -> str:
    """The matrix action: the viewset's action (``list``, ``create``…), otherwise view/submit by method."""
    action = getattr(view, "action", None)
    return str(action) if action else matrix.action_for_method(request.method or "GET")


class MatrixPermission(permissions.BasePermission):
    message = "Your role does not allow this operation."

    def has_permission(self, request: Request, view: Any) -> bool:
        route = request.resolver_match.view_name if request.resolver_match else ""
        action = request_action(request, view)
        if matrix.is_allowed(request.user, route, action):
            return True
        if not getattr(request.user, "is_authenticated", False):
            return False  # DRF answers 401 with the authentication challenge
        if matrix.INTEGRATION_RW in matrix.allowed_roles(route, action) and matrix.roles_of(request.user) == {
                matrix.INTEGRATION}:
            self.message = "This API key is read-only."
        access_refused(request, reason="role", status=403, action=action)
        return False
