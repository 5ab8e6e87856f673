"""limit/offset pagination with published bounds: a limit above PDS_API_MAX_PAGE_SIZE, below 1 or not a number
is a 400 problem document, never silently replaced by the default (DRF's behaviour for 0 or "abc"), clamped,
or sent to PostgreSQL (where 99999999999999999999 is "bigint out of range", a 500)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.settings import api_settings

from apps.api.fields import QueryIntegerField

# Far beyond any list the platform holds, and within a 32-bit integer for clients that parse it as one.
MAX_OFFSET = 2**31 - 1


def _bounded(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    field = QueryIntegerField(min_value=minimum, max_value=maximum)
    try:
        value: int = field.run_validation(raw)
        return value
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({name: exc.detail}) from exc


class ApiPagination(LimitOffsetPagination):
    def __init__(self) -> None:
        self.default_limit: int = api_settings.PAGE_SIZE
        self.max_limit: int = settings.PDS_API_MAX_PAGE_SIZE

    def get_limit(self, request: Request) -> int:
        return _bounded(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return _bounded(request, self.offset_query_param, 0, 0, MAX_OFFSET)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {"name": self.limit_query_param, "required": False, "in": "query",
             "description": f"Number of results per page ({self.max_limit} at most).",
             "schema": {"type": "integer", "minimum": 1, "maximum": self.max_limit,
                        "default": self.default_limit}},
            {"name": self.offset_query_param, "required": False, "in": "query",
             "description": "Index of the first result to return.",
             "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}},
        ]
