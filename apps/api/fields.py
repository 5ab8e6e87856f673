"""Serializer fields that accept exactly what the OpenAPI schema says, and render times as RFC 3339 in UTC.

DRF's own fields are lenient: a CharField takes the number 42, a BooleanField takes "yes", an IntegerField
takes "1.0", a DateField takes "20240101", a DateTimeField takes a time without an offset, and a trimmed
value is checked for length after trimming. Each leniency is a request the schema calls invalid and the API
accepts (or the reverse), which a client cannot rely on and schemathesis reports. These fields judge the
value as it was sent, with the same rule the schema publishes (a pattern is checked with ``fullmatch`` on a
body written with no construct on which Python and ECMA-262 regular expressions differ: no ``\\d``, ``\\s``,
``\\w`` or ``$``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.api.selectors import modality_choices

# The characters str.strip() removes (str.isspace()), written out for the schema's pattern.
_SPACES = "".join(c for c in map(chr, range(0x110000)) if c.isspace())


def _char_class(chars: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in chars)


NO_NUL = "[^\\u0000]*"  # PostgreSQL text cannot hold U+0000
NOT_BLANK = f"[^\\u0000]*[^\\u0000{_char_class(_SPACES)}][^\\u0000]*"  # and one character strip() keeps

# Years a date or time given to the API may have: routing, rosters and filters have nothing before or after.
YEAR_MIN, YEAR_MAX = 2000, 2100
_YEAR = "(?:20[0-9][0-9]|2100)"
_MONTH_DAY = "-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_FULL_DATE = "[0-9]{4}" + _MONTH_DAY
_TIME = "T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
RECENT_DATE = _YEAR + _MONTH_DAY
RECENT_DATE_TIME = _YEAR + _MONTH_DAY + _TIME


class SchemaPattern(RegexValidator):
    """The whole value matches ``body``; drf-spectacular publishes ``^(?:body)$`` as the field's pattern."""

    def __init__(self, body: str, message: str) -> None:
        super().__init__(regex=f"^(?:{body})$", message=message)
        self.body = re.compile(body)

    def __call__(self, value: Any) -> None:
        if not self.body.fullmatch(str(value)):
            raise ValidationError(self.message, code=self.code)


class TextField(serializers.CharField):
    """A JSON string, judged as sent (length, pattern), then stored without surrounding spaces."""

    def __init__(self, *, pattern: str | None = None, pattern_message: str = "", **kwargs: Any) -> None:
        kwargs["trim_whitespace"] = False
        super().__init__(**kwargs)
        if pattern is None:
            pattern = NO_NUL if self.allow_blank else NOT_BLANK
        message = pattern_message or ("Null characters are not allowed." if self.allow_blank
                                      else "This field may not be blank or contain null characters.")
        self.validators.append(SchemaPattern(pattern, message))

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return data

    def run_validation(self, data: Any = serializers.empty) -> Any:
        value = super().run_validation(data)
        return value.strip() if isinstance(value, str) else value


class StrictBooleanField(serializers.BooleanField):
    """true or false, the JSON values; not "yes", 1 or "on"."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictChoiceField(serializers.ChoiceField):
    """One of the choices, as a JSON string."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class FullDateField(serializers.DateField):
    """An RFC 3339 full-date (2024-03-01), nothing else ISO 8601 allows (20240301, 2024-W09-5)."""

    _FORMAT = re.compile(_FULL_DATE)

    def to_internal_value(self, value: Any) -> dt.date:
        if not isinstance(value, str) or not self._FORMAT.fullmatch(value):
            self.fail("invalid", format="YYYY-MM-DD")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail("invalid", format="YYYY-MM-DD")
        raise AssertionError("unreachable")


class UtcDateTimeField(serializers.DateTimeField):
    """Rendered as RFC 3339 in UTC (2026-03-01T20:15:00Z): never a local offset, which for an old date is
    Paris mean time (+00:09:21) and no valid RFC 3339 offset at all."""

    def to_representation(self, value: Any) -> str | None:
        if not value:
            return None
        if isinstance(value, str):
            return value
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError(f"{value!r} is not an aware datetime")
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@extend_schema_field({"type": "string", "format": "date-time", "pattern": f"^(?:{RECENT_DATE_TIME})$",
                      "description": f"RFC 3339 date-time with its offset, years {YEAR_MIN}-{YEAR_MAX}."})
class RecentDateTimeField(UtcDateTimeField):
    """An input instant: RFC 3339 with seconds and an offset, in the years routing and rosters cover (as
    written, before any conversion). Returned in UTC."""

    _FORMAT = re.compile(RECENT_DATE_TIME)

    def to_internal_value(self, value: Any) -> dt.datetime:
        if not isinstance(value, str) or not self._FORMAT.fullmatch(value):
            self.fail("invalid", format=f"YYYY-MM-DDThh:mm:ss+hh:mm, years {YEAR_MIN}-{YEAR_MAX}")
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            self.fail("invalid", format="YYYY-MM-DDThh:mm:ss+hh:mm (a day of the calendar)")
        return parsed.astimezone(dt.UTC)


@extend_schema_field({"type": "string", "format": "date", "pattern": f"^(?:{RECENT_DATE})$",
                      "description": f"RFC 3339 full-date, years {YEAR_MIN}-{YEAR_MAX}."})
class RecentDateField(serializers.DateField):
    _FORMAT = re.compile(RECENT_DATE)

    def to_internal_value(self, value: Any) -> dt.date:
        if not isinstance(value, str) or not self._FORMAT.fullmatch(value):
            self.fail("invalid", format=f"YYYY-MM-DD, years {YEAR_MIN}-{YEAR_MAX}")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail("invalid", format="YYYY-MM-DD (a day of the calendar)")
        raise AssertionError("unreachable")


class QueryIntegerField(serializers.IntegerField):
    """Decimal digits, optionally signed; not "1.0", " 1" or "1_0" (which Python's int() accepts)."""

    _FORMAT = re.compile(r"-?[0-9]{1,20}")

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not (isinstance(data, int) or
                                          (isinstance(data, str) and self._FORMAT.fullmatch(data))):
            self.fail("invalid")
        return int(data)


class StrictInputSerializer(serializers.Serializer):
    """A request body: an object with only the documented fields (the schema says additionalProperties:
    false). A misspelt field would otherwise be dropped in silence, e.g. a request created without its INS."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(k) for k in data if k not in self.fields)
            if unknown:
                raise serializers.ValidationError({k: ["Unknown field."] for k in unknown})
        return super().to_internal_value(data)


class ModalityField(StrictChoiceField):
    """A code of the modality catalogue (apps.regions), exactly as listed (CT, not ct)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("error_messages", {"invalid_choice": "Unknown modality {input}: choose among the codes "
                                                               "the schema lists."})
        super().__init__(choices=[], **kwargs)

    def bind(self, field_name: str, parent: Any) -> None:
        # Read when a serializer is used (a request, the schema), not when this module is imported.
        super().bind(field_name, parent)
        self.choices = modality_choices()


# --- Webhook target URL ------------------------------------------------------------------------------------
# The grammar is RFC 3986's, narrowed to what a webhook target needs: a DNS name (labels of letters, digits and
# hyphens), an IPv4 address or a bracketed IPv6 address; a port from 1 to 65535; a path and query as RFC 3986
# spells them, no fragment. Which targets the platform then refuses (loopback, private, metadata...) is the egress
# policy's decision (apps.api.egress.url_refusal, 400 with its reason), which no pattern can express.
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DEC_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = f"{_DEC_OCTET}(?:\\.{_DEC_OCTET}){{3}}"
_H16 = "[0-9A-Fa-f]{1,4}"
_LS32 = f"(?:{_H16}:{_H16}|{_IPV4})"
_IPV6 = "(?:" + "|".join([
    f"(?:{_H16}:){{6}}{_LS32}",
    f"::(?:{_H16}:){{5}}{_LS32}",
    f"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
    f"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
    f"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
    f"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
    f"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
    f"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
    f"(?:(?:{_H16}:){{0,6}}{_H16})?::",
]) + ")"
_HOST = f"(?:{_LABEL}(?:\\.{_LABEL})*|\\[{_IPV6}\\])"
_PORT = "(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
# RFC 3986 path-abempty and query: unreserved, sub-delims, ":", "@" (and "/", "?" in the query), "%" only as
# %XX; no fragment.
_PCHAR = "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
_PATH = f"(?:/{_PCHAR}*)*(?:\\?(?:{_PCHAR}|[/?])*)?"


def webhook_url_pattern(*, allow_http: bool) -> str:
    """The URLs the API registers, as published: https (http too where PDS_WEBHOOK_ALLOW_HTTP says so), no
    credentials."""
    return f"{'https?' if allow_http else 'https'}://{_HOST}{_PORT}{_PATH}"


class WebhookUrlField(TextField):
    """Checks the URL's syntax only, and lets through what the egress policy refuses with its own explanation
    (http://, credentials), so that the integrator reads why; the schema publishes the result of both."""

    SYNTAX = f"https?://(?:[^@/?#]*@)?{_HOST}{_PORT}{_PATH}"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(pattern=self.SYNTAX, pattern_message="Enter a valid URL.", **kwargs)

    def published_schema(self) -> dict[str, Any]:
        pattern = webhook_url_pattern(allow_http=bool(settings.PDS_WEBHOOK_ALLOW_HTTP))
        return {"type": "string", "format": "uri", "maxLength": self.max_length, "pattern": f"^(?:{pattern})$"}
