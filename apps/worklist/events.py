"""The case timeline is the outbox: integrations subscribe to case events here, from below.

Invariants: a ``CaseEvent`` is written only by ``apps.worklist.services.case_event_add``, which calls
every subscriber registered here with the event, in the transaction that records it; what a subscriber
writes (a webhook delivery row, later an HL7 or DICOM result) therefore commits if and only if the event
does: announced iff committed. A subscriber does no network call (it writes rows and enqueues work with
``transaction.on_commit``). Subscribers register in their ``AppConfig.ready()``, so this module, like the
rest of worklist, imports nothing above worklist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from apps.worklist.models import CaseEvent


class CaseEventSubscriber(Protocol):
    def __call__(self, *, event: CaseEvent) -> None: ...


_subscribers: list[Callable[..., None]] = []


def case_event_subscribe(subscriber: CaseEventSubscriber) -> None:
    """Register ``subscriber(event=...)``; registering the same callable twice keeps one."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def case_event_subscribers() -> tuple[Callable[..., None], ...]:
    return tuple(_subscribers)


def case_event_announce(event: CaseEvent) -> None:
    """Hand a just-recorded event to every subscriber, in registration order, in the caller's transaction."""
    for subscriber in _subscribers:
        subscriber(event=event)


# --- the routing hand-off ----------------------------------------------------------------------------------


class RoutingRequester(Protocol):
    def __call__(self, case_id: int) -> None: ...


_routing_requester: list[Callable[[int], None]] = []  # exactly one: routing's


class RoutingRequesterMissing(RuntimeError):
    """No app asks for a case to be routed: apps.routing is not installed or Django is not set up."""


def case_routing_requester_register(requester: RoutingRequester) -> None:
    """Routing registers, from its ``AppConfig.ready()``, how a case is handed to it (it enqueues its task once
    the transaction commits). Registering another callable replaces it (tests may)."""
    _routing_requester[:] = [requester]


def case_routing_request(case_id: int) -> None:
    """Ask routing to route this case once the caller's transaction commits (a hint: routing's reconciler
    finds cases left unassigned if the message is lost)."""
    if not _routing_requester:
        raise RoutingRequesterMissing("no routing requester is registered (apps.routing registers one in "
                                      "RoutingConfig.ready(): is it in INSTALLED_APPS and is Django set up?)")
    _routing_requester[0](case_id)
