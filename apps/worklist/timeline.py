"""Timeline sentences in the reader's language (apps.core.sentences).

The services store each event's sentence in English (``CaseEvent.message``): it is what the API, the
webhooks and the tele-act record's JSON carry, whatever the language of the request that wrote it. The pages
show ``CaseEvent.text``: the stored sentence matched against the message ids below and translated. Rows
written before keep reading as stored (a sentence no pattern matches is shown unchanged).

A service that writes a new sentence adds its message id here (and its French to locale/fr)."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from apps.core.sentences import Sentence, sentence, sentence_match, sentence_translate

_s = sentence

# Longest first where one sentence is another with a tail (the first that matches wins).
SENTENCES: tuple[Sentence, ...] = (
    # apps.worklist.services.intake
    _s(gettext_noop("%(modality)s %(exam)s requested (%(urgency)s)"), "urgency", words=("modality",)),
    _s(gettext_noop("Ultrasound is not read remotely (the radiologist must hold the probe). Nearest ultrasound "
                    "referral: %(referral)s, about %(minutes)s min away, tel. %(phone)s. Warning: beyond the "
                    "regional %(bound)s-minute bound. Paediatric ultrasound pole: %(pole)s, about "
                    "%(pole_minutes)s min away.")),
    _s(gettext_noop("Ultrasound is not read remotely (the radiologist must hold the probe). Nearest ultrasound "
                    "referral: %(referral)s, about %(minutes)s min away, tel. %(phone)s. Paediatric ultrasound "
                    "pole: %(pole)s, about %(pole_minutes)s min away.")),
    _s(gettext_noop("Ultrasound is not read remotely (the radiologist must hold the probe). Nearest ultrasound "
                    "referral: %(referral)s, about %(minutes)s min away, tel. %(phone)s. Warning: beyond the "
                    "regional %(bound)s-minute bound.")),
    _s(gettext_noop("Ultrasound is not read remotely (the radiologist must hold the probe). Nearest ultrasound "
                    "referral: %(referral)s, about %(minutes)s min away, tel. %(phone)s.")),
    _s(gettext_noop("Ultrasound is not read remotely and no ultrasound referral centre is configured for this "
                    "region.")),
    _s(gettext_noop("Ultrasound is not read remotely and no ultrasound referral centre of this region takes "
                    "this patient.")),
    _s(gettext_noop("Ultrasound study received by DICOM for this redirected request: %(images)s images")),
    _s(gettext_noop("Study received without request: %(images)s images")),
    _s(gettext_noop("Images complete: %(series)s series, %(images)s images")),
    _s(gettext_noop("Late images received after completion: %(label)s")),
    # apps.worklist.services.common (justification after acquisition)
    _s(gettext_noop("Images arrived without a request (justification after acquisition)")),
    _s(gettext_noop("Images arrived before the indication was validated (justification after acquisition): "
                    "reading waits for the validation")),
    _s(gettext_noop("Images arrived before the indication was validated (justification after acquisition): "
                    "reading not held for an emergency")),
    _s(gettext_noop("Request cancelled: %(reason)s")),
    _s(gettext_noop("Request cancelled")),
    # apps.worklist.services.validation
    _s(gettext_noop("Indication accepted. Protocol: %(protocol)s")),
    _s(gettext_noop("Indication refused: %(reason)s")),
    _s(gettext_noop("More information requested: %(question)s")),
    _s(gettext_noop("Information provided: %(answer)s")),
    # apps.worklist.services.matching, claims, expert, reports
    _s(gettext_noop("Study matched by hand: %(series)s series, %(images)s images")),
    _s(gettext_noop("Study matched to request #%(case)s")),
    _s(gettext_noop("Claimed by %(who)s")),
    _s(gettext_noop("Released: %(reason)s")),
    _s(gettext_noop("Released")),
    _s(gettext_noop("Handed off to %(who)s: %(note)s")),
    _s(gettext_noop("Handed off to %(who)s")),
    _s(gettext_noop("Images opened")),
    _s(gettext_noop("Expert opinion requested from %(line)s")),
    _s(gettext_noop("Expert opinion given by %(who)s")),
    _s(gettext_noop("Report signed by %(who)s (critical finding)")),
    _s(gettext_noop("Report signed by %(who)s")),
    _s(gettext_noop("Addendum signed by %(who)s")),
    _s(gettext_noop("Critical finding call to %(who)s (not acknowledged)")),
    _s(gettext_noop("Critical finding call to %(who)s (acknowledged)")),
    # apps.worklist.services.delivery
    _s(gettext_noop("Report delivered to the requesting site (%(channel)s): %(who)s"), words=("channel",)),
    _s(gettext_noop("Report read by %(who)s (%(channel)s)")),
    _s(gettext_noop("Acquisition performed by %(who)s")),
    _s(gettext_noop("Critical finding call confirmed by %(who)s")),
    # apps.worklist.priors.services
    _s(gettext_noop("Prior study retrieved from the site PACS: %(prior)s")),
    _s(gettext_noop("Prior study not retrieved from the site PACS (%(reason)s): %(prior)s"), "reason"),
    # apps.routing.followups
    _s(gettext_noop("Critical finding call to %(who)s not confirmed after %(minutes)s min: radiologist and "
                    "coordinator alerted")),
    _s(gettext_noop("Expert opinion from %(line)s overdue: escalated to the coordinator")),
    # apps.routing.services
    _s(gettext_noop("Assigned to %(who)s (%(line)s) for %(purpose)s; acknowledge within %(minutes)s min"),
       "purpose"),
    _s(gettext_noop("Assigned to %(who)s by the coordinator: %(reason)s")),
    _s(gettext_noop("Escalated to the regional coordinator: %(why)s"), "why"),
    _s(gettext_noop("Automatic routing failed (%(detail)s); retried automatically")),
    _s(gettext_noop("Not acknowledged by %(who)s in time: escalating")),
    # apps.routing.provider_queues
    _s(gettext_noop("Queued for the private provider %(line)s; to be taken within %(minutes)s min")),
    _s(gettext_noop("Not taken by the private provider %(line)s in time: escalating")),
    _s(gettext_noop("Acknowledged by %(who)s")),
    # apps.routing.sla
    _s(gettext_noop("Report overdue: acknowledged by %(who)s, target %(minutes)s min after acknowledgement: the "
                    "coordinator is alerted")),
    _s(gettext_noop("%(channel)s alert could not be delivered: escalating without waiting")),
)

# Words the services put inside a sentence (``translated_params``), so that makemessages collects them.
PARAM_WORDS = (gettext_noop("indication validation"), gettext_noop("reading"),
               gettext_noop("no radiologist available"),
               # apps.worklist.priors.services.RETRIEVE_FAILURE_REASONS
               gettext_noop("the site PACS could not be reached"), gettext_noop("the site PACS did not answer in time"),
               gettext_noop("the images did not arrive"), gettext_noop("the site PACS answered with an error"))


def timeline_match(stored: str) -> tuple[Sentence, dict[str, str]] | None:
    return sentence_match(SENTENCES, stored)


def event_text(stored: str) -> str:
    """The stored English sentence in the active language (unchanged when no sentence matches)."""
    return sentence_translate(SENTENCES, stored)
