"""Every route of the URLconf as a concrete path, for tests that walk the whole site.

    for name, path in url_routes({"public_id": case.public_id, "pk": 1, ...}):
        client.get(path)

``url_routes(params)`` yields ``(route name, path)`` for every route (``namespace:name``; an unnamed route is
named by its pattern). Path parameters are filled from ``params`` by name; a value may also be a callable that
takes the route name and returns the value (for a parameter whose right value depends on the route, such as the
admin's ``object_id``). A parameter missing from ``params`` raises :class:`MissingParameter` rather than skipping
the route: a new route must not silently escape the walk. Each path is checked to resolve back to its own route.
Unnamed (positional) regex groups are called ``_0``, ``_1``… as Django's ``normalize`` names them.
:func:`admin_object_id` is a ready-made value for the admin's ``object_id``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils.regex_helper import normalize


class MissingParameter(LookupError):
    pass


def _regex_piece(pattern: Any) -> str:
    regex = pattern.regex.pattern
    regex = regex[1:] if regex.startswith("^") else regex
    for end in (r"\Z", "$"):
        if regex.endswith(end) and not regex.endswith("\\" + end):
            regex = regex[: -len(end)]
    return regex


def _leaves(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str, Any]]:
    """(full regex, route name, leaf pattern) for every URLPattern under ``patterns``."""
    for p in patterns:
        piece = prefix + _regex_piece(p.pattern)
        if isinstance(p, URLResolver):
            ns = namespace
            if p.namespace:
                ns = f"{namespace}:{p.namespace}" if namespace else p.namespace
            yield from _leaves(p.url_patterns, piece, ns)
        elif isinstance(p, URLPattern):
            name = p.name and (f"{namespace}:{p.name}" if namespace else p.name)
            yield piece, name or f"<unnamed {piece}>", p


def url_routes(params: Mapping[str, Any], *, urlconf: str | None = None) -> Iterator[tuple[str, str]]:
    for regex, name, leaf in _leaves(get_resolver(urlconf).url_patterns):
        path = _fill(regex, name, params)
        match = resolve(path, urlconf=urlconf)
        if match.func is not leaf.callback and getattr(match.func, "__wrapped__", None) is not leaf.callback:
            raise MissingParameter(f"{path} (route {name}) resolves to another route ({match.view_name}): "
                                   "give its parameters values that this route accepts")
        yield name, path


def _fill(regex: str, name: str, params: Mapping[str, Any]) -> str:
    missing: set[str] = set()
    # normalize() gives every way of writing the pattern (optional parts in and out), the same as reverse().
    for fmt, names in normalize(regex):
        absent = [n for n in names if n not in params]
        if absent:
            missing.update(absent)
            continue
        values = {n: _value(params[n], name) for n in names}
        return "/" + fmt % values
    raise MissingParameter(f"route {name} ({regex}) needs a value for {sorted(missing)}")


def _value(value: Any | Callable[[str], Any], route_name: str) -> str:
    v = value(route_name) if callable(value) else value
    return re.sub(r"\s", "", str(v))


def admin_object_id(route_name: str) -> Any:
    """A value for the admin's ``object_id``: the first existing object of the model the route belongs to (0 when
    there is none, which the admin answers as "not found")."""
    from django.contrib import admin

    for model in admin.site._registry:
        label, name = model._meta.app_label, model._meta.model_name
        if route_name.startswith(f"admin:{label}_{name}_") or f"admin/{label}/{name}/" in route_name:
            obj = model._default_manager.order_by("pk").first()
            return obj.pk if obj is not None else 0
    return 0
