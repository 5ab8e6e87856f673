"""PDS period labels in the reader's language (apps.core.sentences).

``apps.regions.calendar.pds_periods`` names each period in English ("Mon 30/11 night"): the label is a key the
coverage report and its exports carry. Pages show it through ``period_label_text`` ("lun 30/11 nuit")."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from apps.core.sentences import Sentence, sentence, sentence_match, sentence_translate

PERIODS: tuple[Sentence, ...] = (
    sentence(gettext_noop("%(weekday)s %(date)s night"), "weekday"),
    sentence(gettext_noop("%(weekday)s %(date)s afternoon"), "weekday"),
    sentence(gettext_noop("%(weekday)s %(date)s day"), "weekday"),
)

# The weekdays as calendar.py writes them (strftime %a), so that makemessages collects them.
WEEKDAYS = (gettext_noop("Mon"), gettext_noop("Tue"), gettext_noop("Wed"), gettext_noop("Thu"),
            gettext_noop("Fri"), gettext_noop("Sat"), gettext_noop("Sun"))


def period_label_text(label: str) -> str:
    """The label in the active language; any other text is returned as it is."""
    return sentence_translate(PERIODS, label) if sentence_match(PERIODS, label) else label
