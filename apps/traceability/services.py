"""Writes of the traceability context: technical incidents, frozen tele-act records, audited exports."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.errors import ApplicationError
from apps.traceability import exports
from apps.traceability.models import TechnicalIncident, TeleActRecord
from apps.traceability.selectors import teleact_record_build
from apps.worklist.models import Case


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


def _digest(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@transaction.atomic
def teleact_record_freeze(*, case_id: int) -> TeleActRecord | None:
    """Freeze the record of a case whose report is signed. Idempotent: an existing record is returned as is.

    The frozen snapshot keeps the patient identity (it is the patient's record); exports apply consent.
    """
    existing = TeleActRecord.objects.filter(case_id=case_id).first()
    if existing is not None:
        return existing
    case = (Case.objects.select_related("site", "requested_by", "radiographer", "validated_by", "assigned_to",
                                        "claimed_by", "assigned_line").filter(pk=case_id).first())
    if case is None or case.signed_at is None:
        return None
    doc = teleact_record_build(case, for_export=False)
    try:
        with transaction.atomic():
            record = TeleActRecord.objects.create(case=case, frozen_at=timezone.now(), snapshot=doc,
                                                  sha256=_digest(doc))
    except IntegrityError:  # frozen concurrently by another worker
        return TeleActRecord.objects.get(case_id=case_id)
    audit_record(action="create", obj=record, patient_data=True, establishment_id=case.site_id,
                 details={"sha256": record.sha256})
    return record


def teleact_records_freeze_pending(*, limit: int = 500) -> int:
    """Freeze the records of signed cases that have none yet (the periodic safety net). Returns how many."""
    ids = list(Case.objects.filter(signed_at__isnull=False, teleact_record__isnull=True)
               .order_by("signed_at").values_list("pk", flat=True)[:limit])
    done = 0
    for case_id in ids:
        if teleact_record_freeze(case_id=case_id) is not None:
            done += 1
    return done


EXPORT_FORMATS = {"json": "application/json", "pdf": "application/pdf", "fhir": "application/fhir+json"}


@dataclass(frozen=True)
class RecordExport:
    content: bytes
    content_type: str
    filename: str
    identity_withheld: bool


@transaction.atomic
def teleact_record_export(*, case: Any, fmt: str) -> RecordExport:
    """Render the record of ``case`` for download and audit the export in the same transaction."""
    if fmt not in EXPORT_FORMATS:
        raise ApplicationError(f"Unknown export format {fmt!r}.", code="unknown_format")
    doc = teleact_record_build(case, for_export=True)
    frozen = TeleActRecord.objects.filter(case_id=case.pk).values_list("sha256", "frozen_at").first()
    doc["frozen_at_signature"] = ({"sha256": frozen[0], "frozen_at": frozen[1].isoformat()} if frozen else None)
    if fmt == "json":
        content = exports.record_json(doc)
    elif fmt == "pdf":
        content = exports.record_pdf(doc)
    else:
        content = json.dumps(exports.record_fhir_bundle(doc), ensure_ascii=False, indent=2).encode()
    withheld = bool(doc["patient"].get("withheld"))
    audit_record(action="export", obj=case, patient_data=True, establishment_id=case.site_id,
                 details={"format": fmt, "document": "teleact_record", "identity_withheld": withheld})
    ext = "pdf" if fmt == "pdf" else "json"
    suffix = "-fhir" if fmt == "fhir" else ""
    return RecordExport(content=content, content_type=EXPORT_FORMATS[fmt], identity_withheld=withheld,
                        filename=f"tele-act-{case.public_id}{suffix}.{ext}")
