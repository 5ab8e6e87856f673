"""Webhook subscriptions of an integration: subscribe, list, unsubscribe, recent deliveries."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api import serializers as s
from apps.api.authentication import Integration
from apps.api.models import WebhookSubscription
from apps.api.permissions import MatrixPermission
from apps.api.views.base import ERRORS, ApiViewSet

# --- Webhooks ------------------------------------------------------------------------------

@extend_schema_view(
    list=extend_schema(summary="Webhook subscriptions of this integration"),
    retrieve=extend_schema(summary="One webhook subscription", responses={200: s.WebhookOutputSerializer, **ERRORS}),
    destroy=extend_schema(summary="Unsubscribe", responses={204: None, **ERRORS}),
)
class WebhookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, ApiViewSet):
    permission_classes = [MatrixPermission]  # integration keys only (apps.accounts.matrix)
    serializer_class = s.WebhookOutputSerializer
    refusal_site_field = "api_key__establishment_id"
    queryset = WebhookSubscription.objects.none()
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        from apps.api.models import WebhookSubscription

        user = self.request.user
        if not isinstance(user, Integration):
            return WebhookSubscription.objects.none()
        return WebhookSubscription.objects.filter(api_key_id=user.key_id, active=True).order_by("pk")

    @extend_schema(summary="Subscribe a URL to events (the HMAC secret is shown once)",
                   request=s.WebhookInputSerializer, responses={201: s.WebhookCreatedSerializer, **ERRORS})
    def create(self, request: Request) -> Response:
        from apps.api.models import ApiKey
        from apps.api.services import webhook_subscription_create

        ser = s.WebhookInputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        key = ApiKey.objects.get(pk=request.user.key_id)
        sub = webhook_subscription_create(api_key=key, url=ser.validated_data["url"],
                                          events=list(ser.validated_data["events"]))
        return Response(s.WebhookCreatedSerializer(sub).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Any) -> None:
        from apps.api.services import webhook_subscription_delete

        webhook_subscription_delete(subscription=instance)

    @extend_schema(summary="Recent deliveries of a subscription (with their outcome)",
                   responses={200: s.WebhookDeliverySerializer(many=True), **ERRORS})
    @action(detail=True, methods=["get"], pagination_class=None)
    def deliveries(self, request: Request, pk: str) -> Response:
        sub = self.get_object()
        qs = sub.deliveries.select_related("case").order_by("-created_at", "-pk")[:100]
        return Response(s.WebhookDeliverySerializer(qs, many=True).data)
