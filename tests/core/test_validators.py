import pytest
from django.core.exceptions import ValidationError

from apps.core.validators import luhn_complete, validate_finess, validate_ins, validate_rpps


@pytest.mark.parametrize("value", [luhn_complete("18000123"), luhn_complete("45012345"), luhn_complete("75000001")])
def test_valid_finess(value):
    validate_finess(value)


@pytest.mark.parametrize("value,code", [
    ("12345678", "finess_format"),        # 8 characters
    ("1234567890", "finess_format"),      # 10 characters
    ("18A000001", "finess_format"),       # letter outside Corsica code
    ("180001231", None),                  # wrong Luhn key unless by chance
])
def test_invalid_finess(value, code):
    good = luhn_complete(value[:8]) if len(value) == 9 and value.isdigit() else None
    if good == value:
        pytest.skip("random value happens to be valid")
    with pytest.raises(ValidationError) as exc:
        validate_finess(value)
    if code:
        assert exc.value.code == code


def test_finess_message_says_what_is_wrong():
    with pytest.raises(ValidationError) as exc:
        validate_finess("1234")
    assert "9 characters" in str(exc.value)


def test_rpps():
    good = luhn_complete("1000012345")
    validate_rpps(good)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    with pytest.raises(ValidationError, match="check digit"):
        validate_rpps(bad)
    with pytest.raises(ValidationError, match="11 digits"):
        validate_rpps("123")


def test_ins_key():
    body = "1850575123456"
    key = 97 - int(body) % 97
    validate_ins(f"{body}{key:02d}")
    with pytest.raises(ValidationError):
        validate_ins(f"{body}{(key + 1) % 97:02d}")
