"""``{{ message|roster_text }}``: a roster warning or CSV import error in the reader's language."""

from __future__ import annotations

from django import template

from apps.rosters.texts import roster_text as _roster_text

register = template.Library()


@register.filter
def roster_text(message: str) -> str:
    return _roster_text(str(message))
