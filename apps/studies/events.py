"""Study hooks: what the ingest needs from the layers above it, which they register from above.

Studies sit below the worklist, traceability and routing, and never import them. What a study change needs
from them is a hook here, filled by the app that owns the work:

- ``study_incident``: a technical incident of the ingest (a refused association, a rejected file, a full
  disk, a quarantined duplicate, a late series, a study stored but not routed). Traceability subscribes
  ``incident_record``. ``kind`` is one of ``StudyIncidentKind``, the values of
  ``apps.traceability.models.IncidentKind`` that the ingest reports (a test checks they are still there).
- ``study_case_attach``: attach a complete study to its case, returning the case id or None (not to be
  routed). Exactly one handler, the worklist's; calling it with none registered raises ``HookMissing``. A
  study the handler recognises as a prior retrieved for a case it marks ``StudyStatus.PRIOR`` (and returns
  None): stored, never routed, no incident.
- ``study_late_images``: images arrived after completion for a study attached to a case. The worklist
  subscribes (it flags the case and writes the timeline event).
- ``study_routing_task``: the name of the Celery task that routes a case, given the case id. Registered once,
  by routing, which names it (``apps.routing.queue.ROUTE_TASK``); studies send it themselves, with
  their own fail-fast connection (``apps.studies.services.completion``).

Invariants: handlers are registered in the subscribing app's ``AppConfig.ready()``, so they are in place once
Django is set up (the gateway, the worker and the web process all call ``django.setup()``). They are called
synchronously, in the caller's transaction: what a handler writes commits if and only if the study change
that called it commits, and a handler that raises rolls that change back. A handler does no network call (it
writes rows; anything else is enqueued with ``transaction.on_commit``). Registering the same callable twice
keeps one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

StudyIncidentKind = Literal["association_refused", "file_rejected", "duplicate_conflict", "storage_full",
                            "late_series", "ultrasound_received", "other"]
IncidentSeverity = Literal["info", "warning", "critical"]


class HookMissing(RuntimeError):
    """A hook that must have a handler has none: the app that fills it is not installed or not ready."""


class HookConflict(RuntimeError):
    """A second, different handler for a hook that takes exactly one."""


class StudyIncidentSubscriber(Protocol):
    def __call__(self, *, kind: str, summary: str, source: str, severity: str = ...,
                 establishment_id: int | None = ..., case_id: int | None = ...,
                 study_id: int | None = ..., details: dict[str, Any] | None = ...) -> object: ...


class StudyCaseAttacher(Protocol):
    def __call__(self, *, study_id: int) -> int | None: ...


class StudyLateImagesSubscriber(Protocol):
    def __call__(self, *, case_id: int, study_uid: str, series_uid: str, label: str) -> None: ...


_incident_subscribers: list[Callable[..., object]] = []
_late_images_subscribers: list[Callable[..., None]] = []
_case_attacher: list[Callable[..., int | None]] = []  # at most one
_routing_task: list[str] = []  # at most one


def _one(registry: list[Any], value: Any, hook: str) -> None:
    if registry and registry[0] != value:
        raise HookConflict(f"{hook} already has a handler ({registry[0]!r}); it takes exactly one")
    registry[:] = [value]


# --- technical incidents -----------------------------------------------------------------------------------


def study_incident_subscribe(subscriber: StudyIncidentSubscriber) -> None:
    if subscriber not in _incident_subscribers:
        _incident_subscribers.append(subscriber)


def study_incident_subscribers() -> tuple[Callable[..., object], ...]:
    return tuple(_incident_subscribers)


def study_incident(*, kind: StudyIncidentKind, summary: str, severity: IncidentSeverity = "warning",
                   establishment_id: int | None = None, case_id: int | None = None, study_id: int | None = None,
                   details: dict[str, Any] | None = None) -> None:
    """Report a technical incident of the ingest (source ``gateway``) to every subscriber, in this transaction."""
    for subscriber in _incident_subscribers:
        subscriber(kind=kind, summary=summary, source="gateway", severity=severity,
                   establishment_id=establishment_id, case_id=case_id, study_id=study_id, details=details)


# --- a complete study and its case -------------------------------------------------------------------------


def study_case_attach_register(attacher: StudyCaseAttacher) -> None:
    _one(_case_attacher, attacher, "study_case_attach")


def study_case_attacher() -> Callable[..., int | None] | None:
    return _case_attacher[0] if _case_attacher else None


def study_case_attach(*, study_id: int) -> int | None:
    """The id of the case the complete study is now attached to, or None if it is not to be routed."""
    if not _case_attacher:
        raise HookMissing("no handler attaches a complete study to its case (apps.worklist registers one in "
                          "WorklistConfig.ready(): is it in INSTALLED_APPS and is Django set up?)")
    return _case_attacher[0](study_id=study_id)


def study_late_images_subscribe(subscriber: StudyLateImagesSubscriber) -> None:
    if subscriber not in _late_images_subscribers:
        _late_images_subscribers.append(subscriber)


def study_late_images_subscribers() -> tuple[Callable[..., None], ...]:
    return tuple(_late_images_subscribers)


def study_late_images(*, case_id: int, study_uid: str, series_uid: str, label: str) -> None:
    """A series of this case's study arrived after completion (``label`` names it for people)."""
    for subscriber in _late_images_subscribers:
        subscriber(case_id=case_id, study_uid=study_uid, series_uid=series_uid, label=label)


# --- the routing message -----------------------------------------------------------------------------------


def study_routing_task_register(task_name: str) -> None:
    """Name the Celery task that routes a case (its one argument: the case id)."""
    _one(_routing_task, task_name, "study_routing_task")


def study_routing_task() -> str:
    if not _routing_task:
        raise HookMissing("no routing task is registered for complete studies (apps.routing registers it in "
                          "RoutingConfig.ready(): is it in INSTALLED_APPS and is Django set up?)")
    return _routing_task[0]
