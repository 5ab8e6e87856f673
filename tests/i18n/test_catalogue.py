"""The French catalogue is complete: every message the code marks for translation has a reviewed French
translation (none missing, none fuzzy), and the compiled .mo the server loads says the same as the .po."""

from __future__ import annotations

import gettext
import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command

from tests.i18n.po import PoEntry, po_entries

ROOT = Path(settings.BASE_DIR)
PO = ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
# The trees makemessages reads: the code and templates that reach a user (tests and tooling do not).
SOURCES = ("apps", "templates", "pds_platform")


def _problems(entries: list[PoEntry]) -> list[str]:
    return [("fuzzy " if e.fuzzy else "untranslated ") + e.label
            for e in entries if e.msgid and (e.fuzzy or not e.translated)]


def test_makemessages_finds_every_message_translated(tmp_path: Path, settings: Any, monkeypatch: Any) -> None:
    """makemessages, run on a copy of the sources, merges the strings of today's code into a copy of the
    catalogue: a new or changed message comes out untranslated or fuzzy, and is listed here."""
    for name in SOURCES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copytree(ROOT / "locale", tmp_path / "locale")
    monkeypatch.chdir(tmp_path)
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    call_command("makemessages", locale=["fr"], no_obsolete=True, verbosity=0)
    merged = po_entries((tmp_path / "locale" / "fr" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8"))
    problems = _problems(merged)
    assert not problems, (f"{len(problems)} French message(s) to translate in locale/fr/LC_MESSAGES/django.po "
                          "(manage.py makemessages -l fr --no-obsolete, translate, compilemessages):\n"
                          + "\n".join(problems))


def test_the_committed_catalogue_has_no_untranslated_or_fuzzy_entry() -> None:
    problems = _problems(po_entries(PO.read_text(encoding="utf-8")))
    assert not problems, "\n".join(problems)


def test_the_compiled_catalogue_is_the_po_of_today() -> None:
    """A .mo compiled before the last edit of the .po serves yesterday's French: compilemessages was forgotten."""
    expected: dict[Any, str] = {}
    for e in po_entries(PO.read_text(encoding="utf-8")):
        if not e.msgid or e.fuzzy or not e.translated:
            continue
        key = f"{e.msgctxt}\x04{e.msgid}" if e.msgctxt is not None else e.msgid
        if e.msgid_plural is None:
            expected[key] = e.msgstr[0]
        else:
            expected.update({(key, n): text for n, text in e.msgstr.items()})
    with MO.open("rb") as fh:
        compiled = {k: v for k, v in gettext.GNUTranslations(fh)._catalog.items() if k != ""}  # type: ignore[attr-defined]
    stale = sorted(repr(k) for k in expected.keys() ^ compiled.keys())
    stale += sorted(repr(k) for k in expected.keys() & compiled.keys() if expected[k] != compiled[k])
    assert not stale, ("locale/fr/LC_MESSAGES/django.mo differs from django.po (run manage.py compilemessages "
                       "-l fr):\n" + "\n".join(stale[:50]))


def test_the_reader_sees_plurals_contexts_flags_and_continuations() -> None:
    entries = po_entries('msgid ""\nmsgstr ""\n"Language: fr\\n"\n\n#: a.py:1\n#, fuzzy, python-format\n'
                         'msgctxt "unit"\nmsgid "%(n)s slot"\nmsgid_plural "%(n)s slots"\nmsgstr[0] "%(n)s créneau"\n'
                         'msgstr[1] ""\n\nmsgid "Say \\"yes\\""\nmsgstr ""\n"Dites "\n"\\"oui\\""\n\n#~ msgid "gone"\n'
                         '#~ msgstr ""\n')
    assert [e.msgid for e in entries] == ["", "%(n)s slot", 'Say "yes"']
    header, plural, quoted = entries
    assert header.msgstr[0] == "Language: fr\n"
    assert plural.fuzzy and plural.msgctxt == "unit" and plural.msgid_plural == "%(n)s slots"
    assert not plural.translated and plural.msgstr == {0: "%(n)s créneau", 1: ""}
    assert quoted.translated and quoted.msgstr[0] == 'Dites "oui"'
    assert _problems(entries) == ["fuzzy [unit] '%(n)s slot' (a.py:1)"]
