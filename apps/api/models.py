"""RIS integrations: API keys, webhook subscriptions and the webhook outbox.

Invariants:
- An API key is stored only as its SHA-256 digest; the clear key is shown once at creation.
  A key belongs to exactly one establishment and sees only that establishment's data.
- A webhook delivery row is written in the same transaction as the case event it announces
  (outbox). Deliveries of one subscription for one case are sent strictly in creation order:
  a pending one blocks the later ones until it is delivered or abandoned.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ApiScope(models.TextChoices):
    READ = "read", _("Read only")
    READ_WRITE = "read_write", _("Read and write")


class ApiKey(models.Model):
    name = models.CharField(_("integration name"), max_length=100)
    establishment = models.ForeignKey("regions.Establishment", on_delete=models.PROTECT, related_name="api_keys",
                                      verbose_name=_("establishment"))
    scope = models.CharField(_("scope"), max_length=12, choices=ApiScope.choices, default=ApiScope.READ)
    # The first characters of the key, shown to recognise it; never enough to use it.
    prefix = models.CharField(_("prefix"), max_length=16, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+", editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def can_write(self) -> bool:
        return self.scope == ApiScope.READ_WRITE


class WebhookSubscription(models.Model):
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="webhooks",
                                verbose_name=_("integration key"))
    establishment = models.ForeignKey("regions.Establishment", on_delete=models.PROTECT, related_name="webhooks")
    url = models.URLField(_("URL"), max_length=500)
    events = models.JSONField(_("events"), default=list)
    # Needed in clear to compute the HMAC; shown to the integrator once, at creation.
    secret = models.CharField(max_length=100, editable=False)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    ABANDONED = "abandoned", _("Abandoned")


class WebhookDelivery(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    case = models.ForeignKey("worklist.Case", on_delete=models.CASCADE, related_name="webhook_deliveries")
    case_event = models.ForeignKey("worklist.CaseEvent", on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    created_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_response = models.TextField(blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    incident_recorded = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["subscription", "case", "status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.subscription_id} ({self.status})"
