"""Sentences stored in English, read in the reader's language.

Some texts are written once, when something happens, and read later by people of any language: a case's
timeline, a notification. They are stored in English (the API, the webhooks and the machine exports carry that
text), and translated when shown: each sentence an app writes is a message id with named placeholders
(``"Claimed by %(who)s"``); a stored text is matched against the app's message ids, and its parts are put back
into the translation. A text no message id matches (a row written before, free text) is shown as stored, so
existing rows keep reading as they did."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from django.utils.translation import gettext

WORD, ANY = r"\S+", r".+?"


@cache
def _compile(msgid: str, words: frozenset[str]) -> re.Pattern[str]:
    parts = re.split(r"%\((\w+)\)s", msgid)
    body = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>{WORD if p in words else ANY})"
                   for i, p in enumerate(parts))
    return re.compile(f"^{body}$", re.DOTALL)


@dataclass(frozen=True)
class Sentence:
    msgid: str
    translated_params: frozenset[str] = frozenset()  # parts that are themselves English words (a label, a reason)
    words: frozenset[str] = frozenset()  # parts that are one word (a modality code): how "A B C" is split

    @property
    def pattern(self) -> re.Pattern[str]:
        return _compile(self.msgid, self.words)


def sentence(msgid: str, *translated_params: str, words: tuple[str, ...] = ()) -> Sentence:
    """Declare a sentence; mark ``msgid`` with gettext_noop where it is written so makemessages collects it."""
    return Sentence(msgid, frozenset(translated_params), frozenset(words))


def sentence_match(book: tuple[Sentence, ...], stored: str) -> tuple[Sentence, dict[str, str]] | None:
    """The first sentence of ``book`` that ``stored`` is an instance of, with its parts."""
    for s in book:
        found = s.pattern.match(stored)
        if found:
            return s, found.groupdict()
    return None


def sentence_translate(book: tuple[Sentence, ...], stored: str) -> str:
    """``stored`` in the active language (unchanged when no sentence of ``book`` matches it)."""
    if not stored:
        return stored
    matched = sentence_match(book, stored)
    if matched is None:
        return gettext(stored)
    s, params = matched
    for name in s.translated_params:
        params[name] = gettext(params[name])
    return gettext(s.msgid) % params
