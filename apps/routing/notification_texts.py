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
    # apps.routing.followups
    sentence(gettext_noop("PDS: critical finding not confirmed, case #%(case)s (%(site)s)")),
    sentence(gettext_noop("The critical finding called to %(who)s has not been confirmed by the requesting site "
                          "after %(minutes)s min.")),
    sentence(gettext_noop("PDS: expert opinion requested (%(line)s)")),
    sentence(gettext_noop("Case #%(case)s (%(modality)s %(exam)s, %(site)s). Opinion due by %(time)s."),
             words=("modality",)),
    sentence(gettext_noop("Case #%(case)s (%(modality)s %(exam)s, %(site)s)."), words=("modality",)),
    sentence(gettext_noop("PDS alert: no expert on duty on %(line)s")),
    sentence(gettext_noop("Case #%(case)s: expert opinion requested, nobody on duty on the line. Opinion due by "
                          "%(time)s.")),
    sentence(gettext_noop("Case #%(case)s: expert opinion requested, nobody on duty on the line.")),
    sentence(gettext_noop("PDS alert: expert opinion overdue, case #%(case)s (%(line)s)")),
    sentence(gettext_noop("Requested by %(who)s from %(expert)s: no opinion by the deadline.")),
    sentence(gettext_noop("Requested by %(who)s: no opinion by the deadline.")),
)


def notification_text(stored: str) -> str:
    """Each line of a stored title or body in the active language."""
    return "\n".join(sentence_translate(TEXTS, line) for line in stored.split("\n"))
