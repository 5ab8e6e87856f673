"""Reads on received studies."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.studies.models import Instance, Study, StudyStatus
from apps.studies.services import StoredInstance


def stored_instance_for(sop_instance_uid: str) -> StoredInstance | None:
    row = (Instance.objects.filter(sop_instance_uid=sop_instance_uid)
           .values_list("sop_instance_uid", "study__study_uid", "path", "sha256").first())
    return StoredInstance(*row) if row else None


def studies_receiving() -> QuerySet[Study]:
    return Study.objects.filter(status=StudyStatus.RECEIVING)


def studies_routing_pending() -> QuerySet[Study]:
    """Complete studies whose routing message has not reached the broker yet."""
    return Study.objects.filter(status=StudyStatus.COMPLETE, routing_enqueued_at__isnull=True, case__isnull=False)


def study_instances(study_id: int) -> QuerySet[Instance]:
    return Instance.objects.filter(study_id=study_id).select_related("series").order_by("series__number",
                                                                                          "instance_number")
