"""Login failures per client address: the throttle that lets lockout be per username *and* address.

django-axes locks a (username, address) pair after PDS_LOGIN_FAILURE_LIMIT failures: someone failing on the
on-call radiologist's username from their own machine no longer locks her out of her workstation. What stops
that someone from guessing freely, across usernames, is this throttle: once an address has failed
PDS_LOGIN_IP_FAILURE_LIMIT logins (any usernames) within axes' cool-off, its login POSTs get a 429 page without
any password being checked, until the cool-off has passed.

The count is read from axes' own records (AccessAttempt rows, one per username, address and user agent, deleted
by axes once older than the cool-off), so every web process sees the same count without another shared store.
Addresses are read by axes' own helper (AXES_CLIENT_IP_CALLABLE, the audit trail's client address).
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from axes.helpers import get_client_ip_address
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone


def login_ip_failure_limit() -> int:
    return int(getattr(settings, "PDS_LOGIN_IP_FAILURE_LIMIT", 30))


def login_ip_window() -> timedelta:
    cooloff = settings.AXES_COOLOFF_TIME
    return cooloff if isinstance(cooloff, timedelta) else timedelta(hours=float(cooloff or 0.25))


def login_ip_failures(ip: str | None) -> int:
    try:
        ipaddress.ip_address(ip or "")
    except ValueError:  # no address, or not one (the audit's client_ip validates it; this query must not fail)
        return 0
    since = timezone.now() - login_ip_window()
    total = (AccessAttempt.objects.filter(ip_address=ip, attempt_time__gt=since)
             .aggregate(n=Sum("failures_since_start"))["n"])
    return int(total or 0)


def login_ip_throttled(request: HttpRequest) -> bool:
    limit = login_ip_failure_limit()
    if limit <= 0 or not getattr(settings, "AXES_ENABLED", True):
        return False
    return login_ip_failures(get_client_ip_address(request)) >= limit
