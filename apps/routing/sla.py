"""Service levels after acknowledgement: an acknowledged case not reported within its region's target for its
urgency (``apps.regions.selectors.service_levels``, stage ``acknowledged_signed``) alerts the coordinator.

The clock starts when the case is both acknowledged and has its images (a radiologist who acknowledged it for
the indication's validation cannot report before the images arrive). One alert per breach: the alert is a
timeline event (kind ``escalated``, ``data.sla_stage``) naming the acknowledgement it is about, written with the
case row locked, so a beat that runs twice, or two beats racing, alert once; a new acknowledgement (after a hand
back) is a new breach. Run by the beat task ``routing.reports_overdue``.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.regions.selectors import service_levels
from apps.routing.notifiers import notification_create
from apps.worklist.models import AssignmentState, Case, CaseEventKind, CaseStatus
from apps.worklist.services import case_event_add

STAGE = "acknowledged_signed"
READING = (CaseStatus.AWAITING_READING, CaseStatus.IN_PROGRESS)


def report_due_at(*, acknowledged_at: dt.datetime, images_complete_at: dt.datetime | None,
                  target_minutes: int) -> dt.datetime | None:
    """When the report is due (None while the images are not complete). Pure."""
    if images_complete_at is None:
        return None
    return max(acknowledged_at, images_complete_at) + dt.timedelta(minutes=target_minutes)


def _candidates() -> list[int]:
    return list(Case.objects.filter(assignment_state=AssignmentState.ACKNOWLEDGED, status__in=READING,
                                    acknowledged_at__isnull=False, images_complete_at__isnull=False,
                                    signed_at__isnull=True).order_by("acknowledged_at").values_list("pk", flat=True)[:500])


@transaction.atomic
def case_report_overdue_alert(*, case_id: int, now: dt.datetime, targets: dict[str, dict[str, int]]) -> bool:
    """Alert the coordinator once if this acknowledged case is past its report target. Returns whether it did."""
    case = (Case.objects.select_for_update(of=("self",)).select_related("site__territory", "assigned_to")
            .filter(pk=case_id).first())
    if (case is None or case.assignment_state != AssignmentState.ACKNOWLEDGED or case.status not in READING
            or case.acknowledged_at is None):
        return False
    target = targets.get(case.urgency, targets["urgent"])[STAGE]
    due = report_due_at(acknowledged_at=case.acknowledged_at, images_complete_at=case.images_complete_at,
                        target_minutes=target)
    if due is None or due > now:
        return False
    since = case.acknowledged_at.isoformat()
    if case.events.filter(kind=CaseEventKind.ESCALATED, data__sla_stage=STAGE, data__since=since).exists():
        return False  # this breach was alerted already
    who = case.assigned_to.display_name if case.assigned_to else "?"
    late = int((now - due).total_seconds() // 60) + target
    case_event_add(case=case, kind=CaseEventKind.ESCALATED, at=now,
                   message=f"Report overdue: acknowledged by {who}, target {target} min after acknowledgement: "
                           f"the coordinator is alerted",
                   data={"sla_stage": STAGE, "since": since, "target_minutes": target, "minutes": late})
    for coordinator in User.objects.filter(role=Role.ARS_COORDINATOR, region_id=case.site.territory.region_id,
                                           is_active=True):
        notification_create(user=coordinator, case=case, kind="sla",
                            title=f"PDS alert: report overdue on case #{case.pk} ({case.modality_id}, {case.site.name})",
                            body=f"Acknowledged by {who}; target {target} min after acknowledgement.")
    return True


def reports_overdue_alert(*, now: dt.datetime | None = None) -> int:
    """Alert the coordinators of every acknowledged case past its report target (beat). Returns the alerts sent."""
    now = now or timezone.now()
    targets_by_region: dict[int, dict[str, dict[str, int]]] = {}
    sent = 0
    for case_id, region_id in Case.objects.filter(pk__in=_candidates()).values_list("pk", "site__territory__region_id"):
        if region_id not in targets_by_region:
            targets_by_region[region_id] = service_levels(region_id)
        sent += case_report_overdue_alert(case_id=case_id, now=now, targets=targets_by_region[region_id])
    return sent
