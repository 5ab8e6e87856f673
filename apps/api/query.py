"""The query string of an API operation holds only what the schema documents, each value valid, once.

Checked before the view runs (``QueryContractMixin.initial``), after authentication and permissions so that
a caller learns nothing before it is allowed in. Refused with a 400 problem document naming each parameter:

- a parameter the operation does not document. A misspelt filter (``?stauts=reported``) would otherwise be
  dropped and the whole list returned, which a client cannot tell from a filtered one. DRF's ``?format=`` is
  documented (and accepted) only where an operation has several representations (FHIR, PDF);
- a parameter given twice, unless it is a list (``status`` of the requests);
- an empty value (``?urgency=``): give a value or leave the parameter out;
- a value the parameter's type, enum, pattern or range refuses (the filters and query serializers below,
  whose rules are the ones drf-spectacular publishes).

The parameters an operation accepts are read from the same places drf-spectacular reads to document them:
the paginator and the FilterSet of a ``list``, and ``query_serializers[action]`` (a plain view's key is its
lower-case HTTP method); ``tests/api/test_input_contract.py`` compares the two for every operation.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, ClassVar

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.settings import api_settings

from apps.api.fields import NO_NUL, RECENT_DATE_TIME, YEAR_MAX, YEAR_MIN


def query_check(request: Request, *, accepted: set[str], repeatable: set[str]) -> None:
    errors: dict[str, list[str]] = {}
    for name in request.query_params:
        values = request.query_params.getlist(name)
        if name not in accepted:
            errors[name] = ["Unknown query parameter."]
        elif len(values) > 1 and name not in repeatable:
            errors[name] = ["Give this parameter once."]
        elif any(value == "" for value in values):
            errors[name] = ["Give a value, or leave the parameter out."]
    if errors:
        raise serializers.ValidationError(errors)


class QueryContractMixin:
    """For ApiView and ApiViewSet: refuses a query string the operation's schema does not allow."""

    # action (viewsets) or lower-case HTTP method (plain views) -> serializer of its query parameters
    query_serializers: ClassVar[dict[str, type[serializers.Serializer]]] = {}

    def accepted_query(self) -> tuple[set[str], set[str]]:
        """(names accepted, names that may be repeated) for the request in hand."""
        request: Request = self.request  # type: ignore[attr-defined]
        action = getattr(self, "action", None) or (request.method or "get").lower()
        accepted: set[str] = set()
        repeatable: set[str] = set()
        if action == "list":
            paginator = getattr(self, "paginator", None)
            if paginator is not None:
                accepted |= {paginator.limit_query_param, paginator.offset_query_param}
            filterset_class = getattr(self, "filterset_class", None)
            if filterset_class is not None and getattr(self, "filter_backends", None):
                for name, filter_ in filterset_class.base_filters.items():
                    accepted.add(name)
                    if isinstance(filter_, django_filters.MultipleChoiceFilter):
                        repeatable.add(name)
        # DRF's ?format= (URL_FORMAT_OVERRIDE) where a view has several renderers, as drf-spectacular documents it.
        formats = {renderer.format for renderer in self.get_renderers()}  # type: ignore[attr-defined]
        if api_settings.URL_FORMAT_OVERRIDE and len(formats) > 1:
            accepted.add(api_settings.URL_FORMAT_OVERRIDE)
        query_serializer = self.query_serializers.get(action)
        if query_serializer is not None:
            for name, field in query_serializer().fields.items():
                accepted.add(name)
                if isinstance(field, serializers.ListField | serializers.MultipleChoiceField):
                    repeatable.add(name)
        return accepted, repeatable

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        accepted, repeatable = self.accepted_query()
        query_check(request, accepted=accepted, repeatable=repeatable)


# --- Filters (django-filter) whose form fields accept what their published schema says ----------------

class _BooleanFormField(forms.Field):
    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if value == "true":
            return True
        if value == "false":
            return False
        raise DjangoValidationError("Choose true or false.", code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    """true or false; django-filter's own reads any other word as "no filter" and returns everything."""

    field_class = _BooleanFormField


class _RecentDateTimeFormField(forms.Field):
    _FORMAT = re.compile(RECENT_DATE_TIME)

    def to_python(self, value: Any) -> dt.datetime | None:
        if value in (None, ""):
            return None
        message = f"Give an RFC 3339 date-time with its offset (2026-03-01T20:00:00+01:00), years {YEAR_MIN}-{YEAR_MAX}."
        if not isinstance(value, str) or not self._FORMAT.fullmatch(value):
            raise DjangoValidationError(message, code="invalid")
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise DjangoValidationError(message, code="invalid") from exc
        # In UTC: PostgreSQL refuses an offset beyond 15:59 (-19:00 is valid RFC 3339) with a DataError.
        return parsed.astimezone(dt.UTC)


@extend_schema_field({"type": "string", "format": "date-time", "pattern": f"^(?:{RECENT_DATE_TIME})$",
                      "description": f"RFC 3339 date-time with its offset, years {YEAR_MIN}-{YEAR_MAX}."})
class RecentDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = _RecentDateTimeFormField


def text_filter(max_length: int, **kwargs: Any) -> django_filters.CharFilter:
    """Exact text, judged as sent: not trimmed (a value is a value), no U+0000 (PostgreSQL refuses it)."""
    return extend_schema_field({"type": "string", "minLength": 1, "maxLength": max_length,
                                "pattern": f"^(?:{NO_NUL})$"})(
        django_filters.CharFilter(max_length=max_length, strip=False, **kwargs))
