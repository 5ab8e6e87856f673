"""The schema documents every status an operation can answer, and request bodies as closed objects.

drf-spectacular documents the success response and whatever a view lists by hand. The errors every API view
can return whatever its code says (apps.core.problems: all RFC 9457 problem documents) are added here, by
the same rules the views follow, so that no operation forgets one:

- 400 everywhere: an unknown, repeated or invalid query parameter (apps.api.query), or an invalid body;
- 401 and 403 everywhere (no valid key or session; a role the permission matrix refuses);
- 404 on operations with a path parameter (no such resource, or one outside the caller's perimeter; also any
  identifier its route's pattern refuses, answered by Django's handler404 as a problem document);
- 406 everywhere (an Accept header no renderer satisfies);
- 413 and 415 on operations that take a body (larger than DATA_UPLOAD_MAX_MEMORY_SIZE; not JSON);
- 429 everywhere (the per-key throttle), with its Retry-After header.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from apps.api.fields import StrictInputSerializer, WebhookUrlField
from apps.api.serializers import ProblemSerializer

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ApiAutoSchema(AutoSchema):
    def _error_statuses(self) -> dict[int, str]:
        statuses = {
            400: "Problem document: the request does not match this operation (unknown, repeated or invalid "
                 "query parameter, invalid body); `errors` names each parameter or field.",
            401: "Problem document: no valid API key (Authorization: Bearer, or X-API-Key) or session.",
            403: "Problem document: this key's role does not allow the operation.",
            406: "Problem document: the Accept header allows none of this operation's media types.",
            429: "Problem document: too many requests for this key; retry after Retry-After seconds.",
        }
        if "{" in self.path:
            statuses[404] = "Problem document: no such resource, or none visible to this key."
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            statuses[413] = "Problem document: the body is larger than the platform accepts."
            statuses[415] = "Problem document: the body is not application/json."
        return statuses

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for code, description in sorted(self._error_statuses().items()):
            if str(code) in responses:
                continue
            responses[str(code)] = self._get_response_for_code(
                OpenApiResponse(ProblemSerializer, description=description), str(code), [PROBLEM_MEDIA_TYPE],
                direction)
            if code == 429:
                responses[str(code)]["headers"] = {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
        return responses

    def _resolve_path_parameters(self, variables: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            # ApiViewSet routes integer ids with lookup_value_regex "[0-9]+", which drf-spectacular can only
            # read as a string pattern; the identifier is an integer (a longer one than 18 digits is a 404).
            if parameter.get("schema") == {"type": "string", "pattern": "^[0-9]+$"}:
                parameter["schema"] = {"type": "integer", "minimum": 0}
        return parameters

    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> dict[str, Any]:
        if isinstance(field, WebhookUrlField):  # depends on a setting: read when the schema is generated
            schema = field.published_schema()
            if field.help_text:
                schema["description"] = str(field.help_text)
            return schema
        result: dict[str, Any] = super()._map_serializer_field(field, direction, bypass_extensions)
        return result

    def _insert_field_validators(self, field: Any, schema: dict[str, Any]) -> None:
        super()._insert_field_validators(field, schema)
        _drop_blank_branch(schema)

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        cls = serializer if isinstance(serializer, type) else type(serializer)
        if direction == "request" and issubclass(cls, StrictInputSerializer):
            schema["additionalProperties"] = False  # unknown fields are refused (StrictInputSerializer)
        return schema


BLANK_BRANCH = {"type": "string", "maxLength": 0}


def _drop_blank_branch(schema: dict[str, Any]) -> None:
    """drf-spectacular publishes a blank-allowed string with a pattern as ``oneOf: [pattern, maxLength 0]``.
    Our patterns accept "" themselves, so "" matched both branches and was schema-invalid (oneOf means exactly
    one), though the API accepts it. When the pattern already accepts "", the blank branch is dropped."""
    branches = schema.get("oneOf")
    if not (isinstance(branches, list) and len(branches) == 2 and branches[1] == BLANK_BRANCH):
        return
    inner = branches[0]
    pattern = inner.get("pattern")
    if pattern is None or inner.get("minLength", 0) > 0 or "format" in inner or not re.search(pattern, ""):
        return
    del schema["oneOf"]
    schema.update(inner)
