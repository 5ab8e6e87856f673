"""Patient identity rules (INS): pure functions over plain values, no database, no clock.

One rule for every way in: the web form (apps.worklist.forms) shows these messages next to the fields, and
``case_create`` (hence the RIS API, as a 422 naming the fields) refuses with the same ones. The shape and
key of the INS alone are ``apps.core.validators.validate_ins`` (a model field validator); here are the rules
across fields, checked only when the INS itself is well formed, so that one mistake gives one message.

The INS matricule is the NIR (first character 1 or 2) or, for a person not yet registered, an NIA
(temporary number; 3/4, 7/8). Characters:
  1      sex: odd = male (1, 3, 7), even = female (2, 4, 8)
  2-3    last two digits of the year of birth
  4-5    month of birth 01-12; 20-42 or 50-99 when the civil status gives no month (99: unknown month)
  6-10   place of birth: department (2 digits, 2A/2B for Corsica, 97x overseas) and commune; 99 and the
         INSEE country code for a birth abroad
  11-13  order number; 14-15 key = 97 - (the first 13 as a number, 2A read 19 and 2B read 18) mod 97
"""

from __future__ import annotations

import datetime as dt
import re

from django.utils.translation import gettext as _

# INSEE code of a place of birth: 2 characters of department (2 digits, 2A, 2B; 97/98 overseas, 99 abroad)
# and 3 of commune or country. "00" is no department.
BIRTH_PLACE_RE = re.compile(r"^(?:0[1-9]|[1-9][0-9]|2A|2B)[0-9]{3}$")
FOREIGN_PREFIX = "99"
INS_RE = re.compile(r"^[123478][0-9]{4}(?:[0-9]{2}|2A|2B)[0-9]{8}$")
MALE_DIGITS = frozenset("137")
FEMALE_DIGITS = frozenset("248")
OLDEST_BIRTH_YEAR = 1890


def ins_month_known(month: int) -> bool | None:
    """True for a real month (01-12), False for the codes of a civil status without a month (20-42, 50-99),
    None for a value the NIR never holds (00, 13-19, 43-49)."""
    if 1 <= month <= 12:
        return True
    if 20 <= month <= 42 or 50 <= month <= 99:
        return False
    return None


def ins_key(body: str) -> int:
    """The key of a 13-character INS body (Corsica: 2A counts as 19, 2B as 18)."""
    return 97 - int(body.replace("2A", "19").replace("2B", "18")) % 97


def _ins_errors(ins: str, *, sex: str, birth_date: dt.date | None, birth_place: str) -> list[str]:
    errors: list[str] = []
    first = ins[0]
    if sex == "F" and first in MALE_DIGITS:
        errors.append(_("The INS starts with %(digit)s, which means a man, but the sex entered is female: "
                        "check the INS or the sex.") % {"digit": first})
    elif sex == "M" and first in FEMALE_DIGITS:
        errors.append(_("The INS starts with %(digit)s, which means a woman, but the sex entered is male: "
                        "check the INS or the sex.") % {"digit": first})
    month = int(ins[3:5])
    known = ins_month_known(month)
    if known is None:
        errors.append(_("The month of birth in the INS (characters 4 and 5) is %(month)s: it must be 01 to 12, "
                        "or 20 to 42 or 50 to 99 when the civil status gives no month.") % {"month": ins[3:5]})
    if birth_date is not None:
        if int(ins[1:3]) != birth_date.year % 100:
            errors.append(_("The INS gives %(yy)s as year of birth (characters 2 and 3) but the date of birth is "
                            "in %(year)s.") % {"yy": ins[1:3], "year": birth_date.year})
        if known and month != birth_date.month:
            errors.append(_("The INS gives month %(mm)s (characters 4 and 5) but the date of birth is in month "
                            "%(month)02d.") % {"mm": ins[3:5], "month": birth_date.month})
    if birth_place and ins[5:7] == FOREIGN_PREFIX and not birth_place.startswith(FOREIGN_PREFIX):
        errors.append(_("The INS says the patient was born abroad (characters 6 and 7 are 99): the place of "
                        "birth must then be a country code 99xxx."))
    return errors


def identity_errors(*, sex: str, birth_date: dt.date | None, birth_place: str, ins: str,
                    today: dt.date) -> dict[str, list[str]]:
    """The identity's incoherences by field name (``patient_ins``, ``patient_birth_date``,
    ``patient_birth_place``); empty when it holds together. ``today`` is the local date (Europe/Paris).
    Sex ``U`` (unknown) is not compared with the INS."""
    errors: dict[str, list[str]] = {}
    if birth_date is not None:
        if birth_date > today:
            errors["patient_birth_date"] = [_("The date of birth cannot be in the future.")]
        elif birth_date.year < OLDEST_BIRTH_YEAR:
            errors["patient_birth_date"] = [_("The date of birth is before %(year)s: check it.")
                                            % {"year": OLDEST_BIRTH_YEAR}]
    place = (birth_place or "").strip().upper()
    if place and not BIRTH_PLACE_RE.match(place):
        errors["patient_birth_place"] = [_(
            "An INSEE place-of-birth code has 5 characters: the department (2 digits, 2A or 2B) and the commune "
            "(3 digits), or 99 and the country code for a birth abroad (e.g. 99350).")]
    ins_value = (ins or "").replace(" ", "").upper()
    if ins_value and INS_RE.match(ins_value) and ins_key(ins_value[:13]) == int(ins_value[13:]):
        ins_problems = _ins_errors(ins_value, sex=sex, birth_date=birth_date, birth_place=place)
        if ins_problems:
            errors["patient_ins"] = ins_problems
    return errors


def age_years(birth_date: dt.date, on: dt.date) -> int:
    """Age in completed years on the day ``on`` (a birthday on 29 February falls on 1 March)."""
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return max(on.year - birth_date.year - int(before_birthday), 0)
