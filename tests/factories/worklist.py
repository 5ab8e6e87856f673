"""Cases for tests, created through the real service (as a physician's form would)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.utils import timezone

from apps.worklist.models import Case
from apps.worklist.services import CaseInput, case_create


def case_input(**overrides: Any) -> CaseInput:
    fields: dict[str, Any] = {
        "patient_birth_name": "DUPONT", "patient_first_names": "Jean Pierre", "patient_sex": "M",
        "patient_birth_date": dt.date(1950, 3, 14), "clinical_question": "Haemorrhage?", "modality_code": "CT",
        "exam": "CT head without contrast", "urgency": "vital", "local_patient_id": "IPP123",
        "patient_informed": True, "clinical_context": "Fall, anticoagulated, GCS 13",
    }
    fields.update(overrides)
    return CaseInput(**fields)


def make_case(demo: Any, *, site: str = "vierzon", physician: str = "urgentiste", assign_to: str | None = None,
              status: str | None = None, **overrides: Any) -> Case:
    case, _ = case_create(site_id=demo.establishments[site].pk, data=case_input(**overrides),
                          requested_by_id=demo.users[physician].pk, idempotency_key=uuid.uuid4().hex)
    updates: dict[str, Any] = {}
    if assign_to:
        updates.update(assigned_to=demo.users[assign_to], assignment_state="offered", assigned_at=timezone.now())
    if status:
        updates["status"] = status
        if status in ("awaiting_reading", "in_progress", "reported"):
            updates["images_complete_at"] = timezone.now()
    if updates:
        Case.objects.filter(pk=case.pk).update(**updates)
        case.refresh_from_db()
    return case


def make_viewer_series(case: Case) -> None:
    """A complete study row with one CT series of one instance for the case, enough for the case page and the
    viewer's markup (the slice's file need not exist)."""
    from pydicom.uid import generate_uid

    from apps.studies.models import Instance, Series, Study

    study = Study.objects.create(study_uid=generate_uid(), site=case.site, case=case, modality="CT", num_series=1,
                                 num_instances=1, status="complete")
    series = Series.objects.create(study=study, series_uid=generate_uid(), number=1, modality="CT",
                                   description="Axial", num_instances=1)
    Instance.objects.create(series=series, study=study, sop_instance_uid=generate_uid(),
                            sop_class_uid="1.2.840.10008.5.1.4.1.1.2", instance_number=1, path="missing/1.dcm",
                            size=1, sha256="0" * 64, received_at=timezone.now())
