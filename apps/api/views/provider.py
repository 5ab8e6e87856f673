"""A private provider's queue through the API (issue 18, point 14): the provider's own system (its API key) or
one of its radiologists (a session) lists the cases waiting in its queue and takes one; webhooks
(``request.queued``, ``request.escalated``) tell the system when a case arrives or leaves."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api import selectors
from apps.api import serializers as s
from apps.api.authentication import Integration
from apps.api.views.base import ERRORS, PROBLEM, UUID_RE, ApiViewSet, audit_list
from apps.worklist.models import Case
from apps.worklist.services import case_claim, provider_case_claim


@extend_schema_view(list=extend_schema(
    summary="A private provider's queue: the requests waiting for it to take them, most urgent first"))
class ProviderQueueViewSet(mixins.ListModelMixin, ApiViewSet):
    serializer_class = s.RequestOutputSerializer
    queryset = Case.objects.none()
    filter_backends: list[Any] = []
    lookup_field = "public_id"
    lookup_value_regex = UUID_RE

    def get_queryset(self) -> Any:
        if self.action == "claim":  # taken meanwhile: the claim says by whom (409), not "not found"
            return selectors.cases_visible_to(self.request.user)
        return selectors.provider_queue_for(self.request.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        results = response.data.get("results", []) if isinstance(response.data, dict) else response.data
        audit_list("worklist.case", [r["id"] for r in results], view="api provider queue")
        return response

    @extend_schema(summary="Take a request from the queue (claim it for reading)",
                   request=s.ProviderClaimDocumentedSerializer,
                   responses={200: s.RequestOutputSerializer, (409, "application/problem+json"): PROBLEM, **ERRORS})
    @action(detail=True, methods=["post"])
    def claim(self, request: Request, public_id: str) -> Response:
        case = self.get_object()
        ser = s.ProviderClaimInputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        user = request.user
        if isinstance(user, Integration):
            provider_case_claim(case_id=case.pk, establishment_id=user.establishment_id,
                                rpps=ser.validated_data["radiologist_rpps"])
        else:
            case_claim(case_id=case.pk, user=user)
        return Response(s.RequestOutputSerializer(selectors.cases_visible_to(user).get(pk=case.pk)).data)
