"""National identifiers: FINESS (establishments), RPPS (practitioners), INS (patients)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_complete(prefix: str) -> str:
    """Append the Luhn check digit to ``prefix`` (used to build demo identifiers)."""
    for key in "0123456789":
        if luhn_ok(prefix + key):
            return prefix + key
    raise AssertionError("unreachable")


_FINESS = re.compile(r"^(\d{2}|2A|2B)\d{7}$")


def validate_finess(value: str) -> None:
    """9 characters: department (2 digits, or 2A/2B for Corsica), 6 digits, Luhn key."""
    if not _FINESS.match(value or ""):
        raise ValidationError(
            _("A FINESS number has 9 characters: a department code (2 digits, 2A or 2B) then 7 digits; got %(v)r."),
            params={"v": value}, code="finess_format")
    numeric = value.replace("2A", "20").replace("2B", "20")
    if not luhn_ok(numeric):
        raise ValidationError(_("FINESS %(v)s has a wrong check digit (Luhn key)."), params={"v": value},
                              code="finess_key")


def validate_rpps(value: str) -> None:
    """11 digits, the last being the Luhn key."""
    if not re.fullmatch(r"\d{11}", value or ""):
        raise ValidationError(_("An RPPS number has exactly 11 digits; got %(v)r."), params={"v": value},
                              code="rpps_format")
    if not luhn_ok(value):
        raise ValidationError(_("RPPS %(v)s has a wrong check digit (Luhn key)."), params={"v": value},
                              code="rpps_key")


def validate_ins(value: str) -> None:
    """INS (NIR, or NIA for a person not yet registered): 13 characters (2A/2B allowed) followed by a 2-digit
    key = 97 - (number mod 97). First character 1/2 (NIR), 3/4 or 7/8 (temporary numbers). The rules across
    fields (sex, date and place of birth) are apps.worklist.identity's."""
    v = (value or "").replace(" ", "")
    if not re.fullmatch(r"[123478]\d{4}(\d{2}|2A|2B)\d{6}\d{2}", v):
        raise ValidationError(_("An INS number has 15 characters (13 + a 2-digit key)."), code="ins_format")
    body = v[:13].replace("2A", "19").replace("2B", "18")
    if 97 - int(body) % 97 != int(v[13:]):
        raise ValidationError(_("INS %(v)s has a wrong key."), params={"v": value}, code="ins_key")
