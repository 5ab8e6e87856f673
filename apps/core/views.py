from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

from apps.core.heartbeat import heartbeat_alive


def _check_database() -> str:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # reported, not raised: this is a health probe
        return f"error: {exc.__class__.__name__}"


def _check_broker() -> str:
    from pds_platform.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"


def healthz(request: HttpRequest) -> JsonResponse:
    db = _check_database()
    checks = {
        "database": db,
        "broker": _check_broker(),
        "worker": ("ok" if heartbeat_alive("worker") else "down") if db == "ok" else "unknown",
        "gateway": ("ok" if heartbeat_alive("gateway") else "down") if db == "ok" else "unknown",
    }
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks,
         "dicom": {"aet": settings.PDS_DICOM_AET, "port": settings.PDS_DICOM_PORT}},
        status=200 if healthy else 503,
    )


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each user to the screen of their role (ROLE_HOME is extended by the apps that own those screens)."""
    target = ROLE_HOME.get(getattr(request.user, "role", ""), "admin:index")
    return redirect(target)


# role -> URL name of that role's landing page.
ROLE_HOME: dict[str, str] = {}
