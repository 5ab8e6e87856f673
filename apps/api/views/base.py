"""Shared ground of the RIS API views: auth, permission, throttling, scoped lookups, problem documents."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse
from rest_framework import viewsets
from rest_framework.views import APIView

from apps.accounts.authorization import object_refused
from apps.api import serializers as s
from apps.api.authentication import ApiKeyAuthentication, SessionAuthentication
from apps.api.permissions import MatrixPermission
from apps.api.query import QueryContractMixin
from apps.api.throttles import ApiKeyRateThrottle
from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, NotFoundError

UUID_RE = r"[0-9a-fA-F-]{36}"
PROBLEM = OpenApiResponse(s.ProblemSerializer, description="Problem document (RFC 9457).")
ERRORS: dict[Any, Any] = {(code, "application/problem+json"): PROBLEM for code in (400, 401, 403, 404, 429)}


class ApiView(QueryContractMixin, APIView):
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [MatrixPermission]
    throttle_classes = [ApiKeyRateThrottle]


class ApiViewSet(QueryContractMixin, viewsets.GenericViewSet):
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [MatrixPermission]
    throttle_classes = [ApiKeyRateThrottle]

    # Where the establishment of a refused object is found, for the audit trail (None: not an establishment's).
    refusal_site_field: str | None = "site_id"
    # Integer identifiers in the route itself: any other text (a control character included) is a plain 404
    # from the URLconf, never a lookup nor an audited "refusal" of an object that cannot exist.
    lookup_value_regex = "[0-9]+"

    def get_object(self) -> Any:
        # A malformed or out-of-range identifier is "not found", never a database error.
        value = str(self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, ""))
        if self.lookup_field == "public_id":
            import uuid

            try:
                uuid.UUID(value)
            except ValueError as exc:
                self._refused(value)
                raise NotFoundError("No such resource.") from exc
        elif not (value.isdigit() and len(value) <= 18):
            self._refused(value)
            raise NotFoundError("No such resource.")
        try:
            return super().get_object()
        except Http404:
            # Another establishment's object and a missing one get the same 404; the trail tells them apart.
            self._refused(value)
            raise

    def _refused(self, value: str) -> None:
        object_refused(self.request, model=self.get_queryset().model, lookup={self.lookup_field: value},
                       site_field=self.refusal_site_field, action=str(self.action or ""))


def audit_list(object_type: str, ids: list[Any], *, view: str) -> None:
    if ids:
        audit_record(action="list", object_type=object_type, object_id="", object_repr=view, patient_data=True,
                     details={"ids": [str(i) for i in ids][:200]})



def not_available(what: str) -> ApplicationError:
    return ApplicationError(f"{what} is not available on this platform yet.", code="not_available", status_code=503)
