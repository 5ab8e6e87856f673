"""Templates ask the permission matrix (apps.accounts.matrix) before offering a link: ``{% if user|may:"route" %}``.

Only a convenience for menus: the middleware and the API's permission enforce the matrix whatever a page shows.
"""

from __future__ import annotations

from typing import Any

from django import template

from apps.accounts import matrix

register = template.Library()


@register.filter
def may(user: Any, route: str) -> bool:
    """Whether ``user`` may open (GET) the page ``route``."""
    return matrix.is_allowed(user, route, matrix.READ)
