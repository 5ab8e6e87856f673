"""Writes on cases. Only these functions (and apps.routing.services for assignment) change a case.

Every change records a CaseEvent (the timeline shown to users, used by the tele-act record and relayed to
the integrations that subscribe to it, apps.worklist.events) and an audit entry, in the same transaction.

Locks follow docs/locking.md: study, then case, then report; every ``select_for_update`` names what it
locks (``of=("self",)``) so that a joined establishment, modality or user row is never locked; the audit
entry and the webhook outbox rows are inserts that take no lock.

One module per stage of a request: intake (creation, study attachment, cancellation), validation, matching,
claims, reports, delivery (receipts, acquisition, critical call confirmation), expert (second opinion); common holds the timeline writer, the routing hand-off and the
case lock. Every public name is importable from here.
"""

from apps.worklist.services.claims import (
    CLAIMABLE,
    case_claim,
    case_hand_off,
    case_open,
    case_release,
    provider_case_claim,
)
from apps.worklist.services.common import case_event_add, enqueue_routing
from apps.worklist.services.delivery import (
    Reader,
    acquisition_log,
    critical_call_confirm,
    reader_for,
    report_delivery_record,
)
from apps.worklist.services.expert import expert_opinion_give, expert_request_create
from apps.worklist.services.intake import (
    MATCH_WINDOW,
    CaseInput,
    case_attach_complete_study,
    case_attach_study,
    case_cancel,
    case_create,
    case_late_images_record,
    case_match_for_study,
)
from apps.worklist.services.matching import study_match_manual
from apps.worklist.services.reports import (
    REPORT_FIELDS,
    addendum_add,
    critical_call_log,
    report_content_hash,
    report_draft_save,
    report_sign,
)
from apps.worklist.services.validation import ValidationDecision, case_info_provide, case_validate

__all__ = [
    "CLAIMABLE", "MATCH_WINDOW", "REPORT_FIELDS", "CaseInput", "Reader", "ValidationDecision",
    "acquisition_log", "addendum_add", "critical_call_confirm", "reader_for", "report_delivery_record", "case_attach_complete_study", "case_attach_study", "case_cancel", "case_claim", "case_create",
    "case_event_add", "case_hand_off", "case_info_provide", "case_late_images_record", "case_match_for_study",
    "case_open", "case_release", "case_validate", "provider_case_claim",
    "critical_call_log", "enqueue_routing", "expert_opinion_give", "expert_request_create", "report_content_hash",
    "report_draft_save", "report_sign", "study_match_manual",
]
