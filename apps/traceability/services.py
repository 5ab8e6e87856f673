from __future__ import annotations

from typing import Any

from django.utils import timezone

from apps.audit.services import audit_record
from apps.traceability.models import TechnicalIncident


def incident_record(*, kind: str, summary: str, source: str, severity: str = "warning",
                    establishment_id: int | None = None, case_id: int | None = None, study_id: int | None = None,
                    details: dict[str, Any] | None = None, reported_by_id: int | None = None) -> TechnicalIncident:
    incident = TechnicalIncident.objects.create(
        at=timezone.now(), kind=kind, summary=summary[:300], source=source, severity=severity,
        establishment_id=establishment_id, case_id=case_id, study_id=study_id, details=details or {},
        reported_by_id=reported_by_id,
    )
    audit_record(action="create", obj=incident, establishment_id=establishment_id,
                 details={"kind": kind, "source": source})
    return incident
