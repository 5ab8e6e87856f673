"""The API's only request parser: JSON with a nesting-depth limit and no duplicate keys.

The size of a body is bounded before it gets here (Django's DATA_UPLOAD_MAX_MEMORY_SIZE, answered 413 by
apps.core.problems); the depth is bounded here, before Python's recursive decoder sees the text, so a body
of ten thousand "[" is a 400 problem document and never a RecursionError (a 500).
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json

# A JSON string (skipped whole: brackets inside it are text) or a bracket.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether arrays/objects nest deeper than ``limit`` in ``text`` (malformed text is left to the decoder)."""
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return True
        elif token in "]}":
            depth -= 1
    return False


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # {"patient_ins": "…", "patient_ins": ""} would otherwise keep the last value without a word.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - the body is not valid {encoding}.") from exc
        limit = int(settings.PDS_API_MAX_JSON_DEPTH)
        if json_depth_exceeds(text, limit):
            raise ParseError(f"JSON parse error - nested deeper than {limit} levels.")
        try:
            # NaN and Infinity are refused (rest_framework.utils.json), as DRF's own parser does.
            return json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except RecursionError as exc:  # cannot happen under the depth limit; never a 500 if it does
            raise ParseError("JSON parse error - nested too deeply.") from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
