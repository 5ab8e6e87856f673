"""Template filters for the facts a worklist row shows about a case: ``{{ case|patient_age }}``,
``{{ case|sla }}`` (ok / warn / late, the waiting time against the regional target)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from apps.worklist.presentation import age_label, sla_level

register = template.Library()


@register.filter
def patient_age(case: Any) -> str:
    return age_label(case.patient_birth_date, timezone.localdate())


@register.filter
def sla(case: Any) -> str:
    """The waiting time of an open case (of a signed one: until signature) against its urgency's target."""
    end = case.signed_at or timezone.now()
    return sla_level(case.urgency, end - case.requested_at)
