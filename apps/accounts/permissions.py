"""DRF: a web session counts for the API only once its second factor is verified.

API keys are machine credentials and are not affected. apps.accounts.middleware already refuses a password-only
session on every /api/ URL; this permission is the same rule where DRF decides, for views that list it (it is in
REST_FRAMEWORK's DEFAULT_PERMISSION_CLASSES; the API's views, which set their own permission classes, are
covered by the middleware).
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, permissions
from rest_framework.request import Request

from apps.accounts.decorators import second_factor_ok


class SessionSecondFactorVerified(permissions.BasePermission):
    message = "This session has not completed the second factor of the login."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.successful_authenticator, authentication.SessionAuthentication):
            return True  # an API key, or nobody (then the view's other permissions refuse)
        return second_factor_ok(request._request)
