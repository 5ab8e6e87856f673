"""Justification before the exam: what images arriving for a request do to its status. A pure rule.

The indication is to be validated by the remote radiologist before the radiographer acquires (DOMAIN.md,
"The request's life"). Images that arrive while the request still awaits that validation (or an answer to
the radiologist's question), or with no request at all, are a deviation: "justification after acquisition".
It is always recorded on the case (``Case.acquired_before_validation`` and an event) and counted on the
dashboard. Reading is never blocked for an emergency (vital or urgent): the case goes straight to awaiting
reading. A deferred case keeps waiting for its validation, which then sends it to reading
(``case_validate``: validated with images complete means awaiting reading).
"""

from __future__ import annotations

from dataclasses import dataclass

# Statuses of worklist.CaseStatus and urgencies of worklist.Urgency, as plain values (a pure rule).
NOT_VALIDATED = ("awaiting_validation", "info_requested")
EMERGENCIES = ("vital", "urgent")
AWAITING_READING = "awaiting_reading"
ACCEPTED = "accepted"


@dataclass(frozen=True)
class ImagesArrival:
    status: str  # the case's status once its images are complete
    deviation: bool  # images acquired before the indication was validated
    reading_held: bool = False  # a deferred case waits for its validation before reading


def images_arrival(*, status: str, urgency: str) -> ImagesArrival:
    """What complete images do to a request in ``status`` of this ``urgency``."""
    if status == ACCEPTED:
        return ImagesArrival(AWAITING_READING, deviation=False)
    if status in NOT_VALIDATED:
        if urgency in EMERGENCIES:
            return ImagesArrival(AWAITING_READING, deviation=True)
        return ImagesArrival(status, deviation=True, reading_held=True)
    return ImagesArrival(status, deviation=False)
