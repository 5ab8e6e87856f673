"""The README and .env.example document every environment variable the code reads."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATTERNS = [re.compile(r'env(?:\.[a-z]+)?\(\s*"([A-Z][A-Z0-9_]+)"'), re.compile(r'environ\.get\(\s*"([A-Z][A-Z0-9_]+)"'),
            re.compile(r'getenv\(\s*"([A-Z][A-Z0-9_]+)"')]
INTERNAL = {"DJANGO_SETTINGS_MODULE", "PDS_TEST_DB_NAME", "CI", "PATH", "HOME", "TCP_NODELAY"}


def _env_vars_read_by_code() -> set[str]:
    names: set[str] = set()
    for folder in ("pds_platform", "apps", "dicom_gateway"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for pattern in PATTERNS:
                names.update(pattern.findall(text))
    return names - INTERNAL


def test_every_environment_variable_is_documented():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    names = _env_vars_read_by_code()
    assert len(names) > 30
    assert not sorted(n for n in names if f"`{n}`" not in readme), "missing from README's table"
    assert not sorted(n for n in names if not re.search(rf"^#? ?{n}=", example, re.M)), "missing from .env.example"


def test_readme_shows_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme and "make test" in readme
