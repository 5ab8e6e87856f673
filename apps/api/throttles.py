"""Per-key throttling (per user for sessions). Counters live in the "api_throttle" cache (Redis) when
configured, so all web processes share them; otherwise in each process's local memory."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import caches
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from apps.api.authentication import Integration


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def __init__(self) -> None:
        self.cache = caches["api_throttle" if "api_throttle" in settings.CACHES else "default"]
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_rate(self) -> str:
        return str(settings.PDS_API_THROTTLE_RATE)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        if isinstance(user, Integration):
            ident = f"key-{user.key_id}-{user.prefix}"
        elif getattr(user, "is_authenticated", False):
            ident = f"user-{user.pk}"
        else:
            ident = f"ip-{self.get_ident(request)}"
        return f"throttle_{self.scope}_{ident}"


class DicomWebRateThrottle(ApiKeyRateThrottle):
    """DICOMweb's own counters and rate: a viewer opening one 300-slice series asks for 300 frames in seconds (and
    the priors as many again), which the API's rate would refuse half-way (429: slices left blank)."""

    scope = "dicomweb"

    def get_rate(self) -> str:
        return str(settings.PDS_DICOMWEB_THROTTLE_RATE)
