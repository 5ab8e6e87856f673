"""Roster warnings and CSV import errors in the reader's language (apps.core.sentences).

The roster checks (apps.rosters.checks) and the CSV import write English sentences: a shift's ``flags`` keep
them, and so do the refusals raised to the admin. The admin pages show them through ``roster_text``. A stored
text made of several sentences (the import joins a line's violations) is translated sentence by sentence."""

from __future__ import annotations

import re

from django.utils.formats import get_format
from django.utils.translation import gettext_noop

from apps.core.sentences import Sentence, sentence, sentence_match, sentence_translate

TEXTS: tuple[Sentence, ...] = (
    sentence(gettext_noop("Overlaps another shift (%(start)s – %(end)s).")),
    sentence(gettext_noop("Only %(hours)s of rest after the %(what)s ending %(end)s: 11 hours are required."),
             "what"),
    sentence(gettext_noop("This %(what)s leaves only %(hours)s of rest before the shift starting %(start)s: "
                          "11 hours are required."), "what"),
    sentence(gettext_noop("%(hours)s of continuous work from %(start)s to %(end)s: at most 24 hours.")),
    sentence(gettext_noop("%(count)s on-calls in %(month)s: the region's limit is %(limit)s per month."),
             words=("count",)),
    sentence(gettext_noop("%(who)s is %(age)s and has not volunteered for on-call after 60.")),
    sentence(gettext_noop("%(who)s is not authorised to read for: %(what)s.")),
    sentence(gettext_noop("unreadable date/time %(value)s (expected YYYY-MM-DD HH:MM, Paris time)")),
    sentence(gettext_noop("missing columns: %(missing)s (expected %(expected)s)")),
    sentence(gettext_noop("unknown line %(line)s in this region")),
    sentence(gettext_noop("unknown radiologist %(who)s (username or RPPS)")),
    sentence(gettext_noop("the shift ends before it starts")),
    sentence(gettext_noop("unknown kind %(kind)s (one of %(kinds)s)")),
    sentence(gettext_noop("unknown role %(role)s (one of %(roles)s)")),
    sentence(gettext_noop("no shift in the file")),
)

# What apps.rosters.checks puts in a rest warning (``_what``), so that makemessages collects it.
WHAT = (gettext_noop("garde"), gettext_noop("astreinte intervention"), gettext_noop("night of remote reading"))


HOURS = re.compile(r"\b(\d+)\.(\d+) h\b")


def roster_text(stored: str) -> str:
    """``stored`` in the active language, sentence by sentence (a sentence no pattern knows is kept as it is).
    Split first: a pattern that starts with a placeholder would otherwise swallow the sentences before it."""
    parts = re.split(r"(?<=[.)]) (?=[A-Z0-9])", stored) if stored else []
    text = " ".join(sentence_translate(TEXTS, p) if sentence_match(TEXTS, p) else p for p in parts)
    # The checks write hours with a point ("1.5 h"): the reader's decimal separator ("1,5 h" in French).
    sep = str(get_format("DECIMAL_SEPARATOR"))
    return HOURS.sub(lambda m: f"{m[1]}{sep}{m[2]} h", text) if sep != "." else text
