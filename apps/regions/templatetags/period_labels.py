"""``{{ label|period_text }}``: a PDS period label in the reader's language (apps.regions.period_labels)."""

from __future__ import annotations

from django import template

from apps.regions.period_labels import period_label_text

register = template.Library()


@register.filter
def period_text(label: str) -> str:
    return period_label_text(str(label))
