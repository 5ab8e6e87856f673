"""System check: the demo's second-factor skip never reaches production."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security)
def second_factor_not_skipped_in_production(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    # settings.py already forces PDS_DEMO_SKIP_2FA off when DEBUG is off; this catches a settings module that
    # would set it by another route.
    if getattr(settings, "PDS_DEMO_SKIP_2FA", False) and not settings.DEBUG:
        return [Error("PDS_DEMO_SKIP_2FA is on with DEBUG off: the second factor would be skipped in production.",
                      id="accounts.E001")]
    return []
