"""Notification titles and bodies in the reader's language (apps.core.sentences).

``notification_create`` stores the English text (the row is the outbox of the email and SMS backends, and the
API reads it); the SMS, the email and the in-app list translate it when they are sent or shown, in the
language active there (French in the workers, the default)."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from apps.core.sentences import Sentence, sentence, sentence_translate

TEXTS: tuple[Sentence, ...] = (
    sentence(gettext_noop("PDS alert: case #%(case)s unassigned (%(modality)s, %(site)s)"), words=("modality",)),
    sentence(gettext_noop("PDS: %(urgency)s %(modality)s from %(site)s"), "urgency", words=("modality",)),
    sentence(gettext_noop("Case #%(case)s assigned to you for %(purpose)s (%(exam)s). Acknowledge within "
                          "%(minutes)s min."), "purpose"),
    sentence(gettext_noop("Case #%(case)s assigned to you by the coordinator (%(exam)s): %(reason)s. "
                          "Acknowledge within %(minutes)s min.")),
    # apps.routing.sla
    sentence(gettext_noop("PDS alert: report overdue on case #%(case)s (%(modality)s, %(site)s)"),
             words=("modality",)),
    sentence(gettext_noop("Acknowledged by %(who)s; target %(minutes)s min after acknowledgement.")),
    # apps.routing.redirections
    sentence(gettext_noop("PDS: ultrasound received from %(site)s: not read remotely, redirect the patient")),
    sentence(gettext_noop("Case #%(case)s (%(exam)s): send the patient to %(referral)s, about %(minutes)s min "
                          "away, tel. %(phone)s.")),
    sentence(gettext_noop("Case #%(case)s (%(exam)s): no ultrasound referral centre can take this patient; "
                          "organise the ultrasound with the coordinator.")),
    sentence(gettext_noop("Warning: no suitable ultrasound centre within %(bound)s min.")),
    sentence(gettext_noop("Paediatric ultrasound pole: %(pole)s, about %(minutes)s min away.")),
)


def notification_text(stored: str) -> str:
    """Each line of a stored title or body in the active language."""
    return "\n".join(sentence_translate(TEXTS, line) for line in stored.split("\n"))
