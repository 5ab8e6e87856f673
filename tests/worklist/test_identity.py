"""The identity rules (apps.worklist.identity) as a table of cases: pure functions, no database."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from apps.core.validators import validate_ins
from apps.worklist.identity import age_years, identity_errors, ins_key, ins_month_known

TODAY = dt.date(2026, 12, 1)


def ins(body: str) -> str:
    """A 13-character body with its right key."""
    return f"{body}{ins_key(body):02d}"


def errors(*, sex: str = "F", birth: dt.date = dt.date(1955, 8, 14), place: str = "", number: str = "") -> dict:
    return identity_errors(sex=sex, birth_date=birth, birth_place=place, ins=number, today=TODAY)


def test_the_key_is_97_minus_the_number_mod_97_with_corsica_read_19_and_18() -> None:
    assert ins("2550814168025") == "255081416802538"  # the example of the API documentation
    assert ins_key("185052A004123") == 97 - 1850519004123 % 97  # 2A read 19: the number minus 1,000,000
    assert ins_key("185052B004123") == 97 - 1850518004123 % 97  # 2B read 18: minus 2,000,000
    validate_ins(ins("18505" + "2A" + "004123"))
    validate_ins(ins("28505" + "2B" + "004123"))


@pytest.mark.parametrize("first", list("123478"))
def test_nir_and_temporary_numbers_are_accepted_by_shape(first: str) -> None:
    validate_ins(ins(f"{first}550875123456"))


@pytest.mark.parametrize("bad", ["555087512345612", "055087512345612", "25508751234561", "2550875123456XX"])
def test_an_ins_of_another_shape_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        validate_ins(bad)


@pytest.mark.parametrize(("sex", "first", "refused"), [
    ("F", "1", True), ("F", "3", True), ("F", "7", True), ("F", "2", False), ("F", "4", False), ("F", "8", False),
    ("M", "2", True), ("M", "8", True), ("M", "1", False), ("M", "7", False), ("U", "1", False), ("U", "2", False),
])
def test_the_first_character_gives_the_sex(sex: str, first: str, refused: bool) -> None:
    found = errors(sex=sex, number=ins(f"{first}550875123456"))
    assert ("patient_ins" in found) is refused
    if refused:
        assert "sex" in found["patient_ins"][0]


@pytest.mark.parametrize(("month", "refused"), [
    ("08", False), ("07", True), ("00", True), ("13", True), ("19", True), ("20", False), ("42", False),
    ("43", True), ("49", True), ("50", False), ("99", False),
])
def test_the_month_matches_or_is_a_code_for_no_month(month: str, refused: bool) -> None:
    assert ("patient_ins" in errors(number=ins(f"255{month}75123456"))) is refused


def test_the_year_must_match() -> None:
    found = errors(number=ins("2560875123456"))
    assert found["patient_ins"] == ["The INS gives 56 as year of birth (characters 2 and 3) but the date of birth "
                                    "is in 1955."]
    assert errors(number=ins("2550875123456")) == {}


def test_month_codes() -> None:
    assert ins_month_known(1) is True and ins_month_known(12) is True
    assert ins_month_known(20) is False and ins_month_known(99) is False
    assert ins_month_known(0) is None and ins_month_known(45) is None


def test_several_disagreements_are_all_reported_on_the_ins() -> None:
    found = errors(sex="M", birth=dt.date(1960, 1, 2), number=ins("2550875123456"))
    assert len(found["patient_ins"]) == 3


def test_a_wrong_key_is_left_to_the_shape_validator() -> None:
    good = ins("1550875123456")
    wrong = good[:13] + f"{(int(good[13:]) + 1) % 97:02d}"
    assert errors(number=wrong) == {}  # validate_ins says "wrong key", once


@pytest.mark.parametrize(("place", "ok"), [
    ("18033", True), ("2A004", True), ("2B033", True), ("97411", True), ("99350", True), ("1803", False),
    ("00123", False), ("2C004", False), ("18O33", False), ("180333", False),
])
def test_the_place_of_birth_is_a_5_character_insee_code(place: str, ok: bool) -> None:
    assert ("patient_birth_place" not in errors(place=place)) is ok


def test_born_abroad_in_the_ins_needs_a_country_code() -> None:
    number = ins("2550899350123")
    assert errors(number=number, place="99350") == {}
    assert "99xxx" in errors(number=number, place="18033")["patient_ins"][0]
    assert errors(number=ins("2550818033123"), place="18033") == {}


def test_no_future_birth_date() -> None:
    assert errors(birth=TODAY + dt.timedelta(days=1))["patient_birth_date"] == [
        "The date of birth cannot be in the future."]
    assert errors(birth=TODAY) == {}
    assert "patient_birth_date" in errors(birth=dt.date(1850, 1, 1))


@pytest.mark.parametrize(("birth", "on", "age"), [
    (dt.date(1950, 3, 14), dt.date(2026, 3, 13), 75), (dt.date(1950, 3, 14), dt.date(2026, 3, 14), 76),
    (dt.date(2000, 2, 29), dt.date(2026, 2, 28), 25), (dt.date(2000, 2, 29), dt.date(2026, 3, 1), 26),
    (dt.date(2026, 12, 1), dt.date(2026, 12, 1), 0),
])
def test_age_in_completed_years(birth: dt.date, on: dt.date, age: int) -> None:
    assert age_years(birth, on) == age
