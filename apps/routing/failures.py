"""Routing failures: an attempt that failed with an error is recorded once per run of failures (a timeline
event and a technical incident), without hiding the error being raised."""

from __future__ import annotations

import logging

from django.db import transaction

from apps.traceability.models import IncidentKind, Severity
from apps.traceability.services import incident_record
from apps.worklist.models import Case, CaseEventKind
from apps.worklist.services import case_event_add

log = logging.getLogger(__name__)


def _failure_record_safely(*, case_id: int, trigger: str, error: BaseException) -> None:
    """Record a routing failure without hiding the error being raised (the database may be what failed)."""
    try:
        routing_failure_record(case_id=case_id, trigger=trigger, error=error)
    except Exception:
        log.warning("routing of case %s failed (%s) and the failure could not be recorded", case_id, trigger,
                    exc_info=True)


@transaction.atomic
def routing_failure_record(*, case_id: int, trigger: str, error: BaseException) -> bool:
    """Record that routing a case failed with an error: a timeline event and a technical incident, once per
    run of failures (the task retries, the reconciler runs every 30 s, the escalation tick every 2 s: one
    line each time would bury the timeline and the log). Returns whether this failure was new."""
    case = Case.objects.select_for_update(of=("self",)).select_related("site").filter(pk=case_id).first()
    if case is None:
        return False
    detail = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"[:200]
    last_failure = (case.events.filter(kind=CaseEventKind.INCIDENT, data__has_key="routing_error")
                    .order_by("-pk").values_list("pk", flat=True).first())
    last_decision = (case.events.filter(kind__in=[CaseEventKind.ASSIGNED, CaseEventKind.ESCALATED])
                     .order_by("-pk").values_list("pk", flat=True).first())
    if last_failure is not None and (last_decision is None or last_failure > last_decision):
        log.warning("routing of case %s failed again (%s): %s; retried later", case_id, trigger, detail)
        return False
    log.warning("routing of case %s failed (%s); retried later", case_id, trigger, exc_info=error)
    case_event_add(case=case, kind=CaseEventKind.INCIDENT,
                   message=f"Automatic routing failed ({detail}); retried automatically",
                   data={"routing_error": detail, "trigger": trigger})
    incident_record(kind=IncidentKind.OTHER, source="routing", establishment_id=case.site_id, case_id=case.pk,
                    severity=Severity.CRITICAL if case.urgency == "vital" else Severity.WARNING,
                    summary=f"Routing of case #{case.pk} failed: {detail}",
                    details={"error": detail, "trigger": trigger})
    return True
