"""/healthz: whether every process is up and whether the work the beat schedule drives is actually being
done. Here, at the top of the stairs (the project package, above every app), because it reads several apps.

Each check returns (state, figures): "ok" or "degraded", and the numbers an operator needs to see why.
Both queries are cheap: an index range on unsealed audit entries, and a count capped at a few rows over the
cases in a routable status (``status`` index) that nobody was assigned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from apps.audit.selectors import audit_seal_lag_seconds
from apps.core.heartbeat import STALE_AFTER, heartbeat_age_seconds, heartbeat_alive, supervised_processes
from apps.worklist.models import AssignmentState, Case, CaseStatus
from pds_platform.celery import app

# Statuses in which a case waits for routing to give it a radiologist (apps.routing.services.ROUTABLE).
_ROUTABLE = (CaseStatus.AWAITING_VALIDATION, CaseStatus.AWAITING_READING)


def audit_seal_check() -> tuple[str, dict[str, Any]]:
    """The sealer (beat task audit.seal) keeps up: unsealed entries are protected by their MAC only."""
    lag = audit_seal_lag_seconds()
    limit = float(settings.PDS_HEALTH_SEAL_LAG_SECONDS)
    return ("ok" if lag <= limit else "degraded"), {"lag_seconds": round(lag, 1), "max_lag_seconds": limit}


def routing_backlog_check(*, now: dt.datetime | None = None) -> tuple[str, dict[str, Any]]:
    """Cases waiting for an assignment for longer than PDS_HEALTH_BACKLOG_SECONDS: routing (task, then the
    reconciler every 30 s) should have given each one a radiologist or the coordinator within seconds.
    A case waits from its request (validation) or from its images being complete (reading)."""
    now = now or timezone.now()
    older_than = float(settings.PDS_HEALTH_BACKLOG_SECONDS)
    allowed = int(settings.PDS_HEALTH_BACKLOG_MAX)
    cutoff = now - dt.timedelta(seconds=older_than)
    waiting = (Case.objects.filter(assignment_state=AssignmentState.UNASSIGNED, status__in=_ROUTABLE,
                                   modality__teleradiology_eligible=True)
               .annotate(waiting_since=models.Case(
                   models.When(models.Q(status=CaseStatus.AWAITING_READING, images_complete_at__isnull=False),
                               then=models.F("images_complete_at")),
                   default=models.F("requested_at")))
               .filter(waiting_since__lt=cutoff))
    # Counted up to one past the limit, and a few more for the figure: never a scan of a huge backlog.
    shown = allowed + 100
    count = waiting.values("pk")[:shown + 1].count()
    oldest = waiting.order_by("waiting_since").values_list("waiting_since", flat=True).first()
    figures: dict[str, Any] = {
        "waiting": count if count <= shown else f"more than {shown}",
        "oldest_seconds": round((now - oldest).total_seconds()) if oldest is not None else None,
        "older_than_seconds": older_than, "max_waiting": allowed,
    }
    return ("ok" if count <= allowed else "degraded"), figures


def _check_database() -> str:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # reported, not raised: this is a health probe
        return f"error: {exc.__class__.__name__}"


def _check_broker() -> str:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"


def _check_work(check: Callable[[], tuple[str, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    try:
        return check()
    except Exception as exc:  # reported, not raised: this is a health probe
        return f"error: {exc.__class__.__name__}", {}


def healthz(request: HttpRequest) -> JsonResponse:
    """Up when every process is up *and* the work they exist for is being done: the audit trail is sealed
    (``audit_seal``) and no case waits for an assignment too long (``routing_backlog``). ``failing`` names the
    checks that are not ok; ``figures`` gives their numbers (heartbeat ages, sealing lag, backlog)."""
    db = _check_database()
    checks: dict[str, str] = {"database": db, "broker": _check_broker()}
    figures: dict[str, Any] = {}
    for kind in ("worker", "gateway", "beat"):
        # Beat drives escalations, the sealer and the re-sending of lost routing messages: without it
        # nothing escalates and the audit trail stays unsealed.
        checks[kind] = ("ok" if heartbeat_alive(kind) else "down") if db == "ok" else "unknown"
        if db == "ok":
            figures[kind] = {"heartbeat_age_seconds": heartbeat_age_seconds(kind),
                             "stale_after_seconds": STALE_AFTER.total_seconds()}
    for name, check in (("audit_seal", audit_seal_check), ("routing_backlog", routing_backlog_check)):
        if db != "ok":
            checks[name] = "unknown"
            continue
        checks[name], figures[name] = _check_work(check)
    failing = [name for name, state in checks.items() if state != "ok"]
    body: dict[str, Any] = {"status": "degraded" if failing else "ok", "failing": failing, "checks": checks,
                            "figures": figures,
                            "dicom": {"aet": settings.PDS_DICOM_AET, "port": settings.PDS_DICOM_PORT}}
    if db == "ok":
        processes = supervised_processes()
        if processes is not None:
            # Under run_platform: each child's restarts and last exit (a restarted child that is up again
            # does not make the platform unhealthy, but the restarts stay visible).
            body["processes"] = processes
    return JsonResponse(body, status=503 if failing else 200)
