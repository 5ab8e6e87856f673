"""French typography: a non-breaking space (U+00A0 or the narrow U+202F) stands before ':', ';', '!', '?' and
inside guillemets « », so that the mark never wraps alone to the next line. Checked on the compiled catalogue the
server serves and on the literal text of the templates (their labels go through gettext; what is left is markup)."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
MO = ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.mo"
NBSP = "\u00a0\u202f"
# A mark that ends a word (a space, the end or a placeholder follows) with a plain space or nothing before it:
# "Statut:" and "Statut :" are wrong, "Statut\u00a0:" is right; "10:30", "HH:MM", "a;b" and URLs are not text.
_LOOSE_MARK = re.compile(rf"(?<=[^\s{NBSP}]) ?[:;!?](?=\s|$|¤)")
_LOOSE_GUILLEMET = re.compile(rf"«(?![{NBSP}])|(?<![{NBSP}])»")
# Template syntax: a translated message is English (its French, the msgstr, is checked in the catalogue) and
# stands as a value (¤) like anything else in {{ }} / {% %}; tags, comments, scripts and styles are not text.
_TEMPLATE_NOISE = (
    (re.compile(r"\{#.*?#\}|<(script|style)\b.*?</\1>|<!--.*?-->", re.S), ""),
    (re.compile(r"\{%\s*blocktranslate\b.*?\{%\s*endblocktranslate\s*%\}", re.S), "¤"),
    (re.compile(r"\{%.*?%\}|\{\{.*?\}\}", re.S), "¤"),
    (re.compile(r"<[^>]*>", re.S), ""),
)


def typography_faults(text: str) -> list[str]:
    return [excerpt for _line, excerpt in _faults(text)]


def _faults(text: str) -> list[tuple[int, str]]:
    """(line, excerpt) of each loose mark; the substitutions keep the line breaks, so lines stay the source's."""
    text = text.replace("&nbsp;", "\u00a0").replace("&#8239;", "\u202f")
    text = re.sub(r"%\(\w+\)[sdr]|%[sdr]|\{\w*\}", "¤", text)  # a placeholder ends a word like a value does
    return [(text.count("\n", 0, m.start()) + 1, text[max(0, m.start() - 30):m.end() + 10])
            for rx in (_LOOSE_MARK, _LOOSE_GUILLEMET) for m in rx.finditer(text)]


def _compiled_msgstrs() -> dict[str, str]:
    with MO.open("rb") as fh:
        catalog = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
    return {repr(k): v for k, v in catalog.items() if k != ""}


def test_the_french_catalogue_puts_a_non_breaking_space_before_double_marks() -> None:
    faults = [f"{key}: {fault!r}" for key, text in _compiled_msgstrs().items() for fault in typography_faults(text)]
    assert not faults, ("French msgstr(s) with a plain or missing space before : ; ! ? or inside « » (use U+00A0 "
                        "in locale/fr/LC_MESSAGES/django.po, then compilemessages):\n" + "\n".join(faults))


def test_the_templates_have_no_literal_mark_glued_or_loosely_spaced() -> None:
    faults = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        if "drf_spectacular" in path.parts:  # a third-party page, not ours
            continue
        text = path.read_text(encoding="utf-8")
        for rx, repl in _TEMPLATE_NOISE:
            text = rx.sub(lambda m, repl=repl: repl + "\n" * m.group(0).count("\n"), text)
        faults += [f"{path.relative_to(ROOT)}:{line}: {f!r}" for line, f in _faults(text)]
    assert not faults, ("literal ':' ';' '!' '?' in templates: put the label and its mark through gettext "
                        '({% translate "Status:" %}, msgstr "Statut\\u00a0:") or write &nbsp;:\n' + "\n".join(faults))


def test_the_checker_sees_loose_marks_and_spares_times_and_codes() -> None:
    assert typography_faults("Statut: reçu") and typography_faults("Statut : reçu")
    assert typography_faults("rien ; suite") and typography_faults("Vraiment ?") and typography_faults("« oui »")
    assert typography_faults("Dossier %(case)s : vu")
    assert not typography_faults("Statut\u00a0: à 10:30, HH:MM, line;radiologist, «\u00a0oui\u00a0»\u202f!")
    assert not typography_faults("https://example.org/a?b=1 et Statut&nbsp;: vu")
    assert [line for line, _excerpt in _faults("Un\u00a0:\ndeux\ntrois:")] == [3]
