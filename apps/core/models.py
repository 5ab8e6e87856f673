from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True


class Heartbeat(models.Model):
    """Last sign of life of a non-web process (worker, beat, gateway), read by /healthz."""

    name = models.CharField(max_length=200, primary_key=True)
    kind = models.CharField(max_length=20, db_index=True)  # worker | beat | gateway
    last_seen = models.DateTimeField()
    info = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seen:%H:%M:%S}"
