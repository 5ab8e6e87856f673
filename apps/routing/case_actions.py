"""The radiologist's answers to an assignment on the case page (acknowledge, decline, hand back).

The routing engine owns assignments, so these actions live here and register themselves in the worklist's
case actions (``apps.worklist.views.action``) when RoutingConfig.ready() imports this module: the worklist
never calls routing.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _

from apps.core.errors import ApplicationError
from apps.routing.services import assignment_acknowledge, assignment_decline, assignment_hand_back
from apps.worklist.models import Case
from apps.worklist.views import action


def _reason(d: dict[str, Any]) -> str:
    reason = str(d.get("reason", "")).strip()
    if not reason:
        raise ApplicationError(_("Give a reason."), code="reason_required")
    return reason


@action("acknowledge")
def _ack(request: HttpRequest, case: Case, d: dict[str, Any]) -> str:
    assignment_acknowledge(case_id=case.pk, user=request.user)
    return _("Assignment acknowledged.")


@action("decline")
def _decline(request: HttpRequest, case: Case, d: dict[str, Any]) -> str:
    assignment_decline(case_id=case.pk, user=request.user, reason=_reason(d))
    return _("Case declined; it is being re-routed.")


@action("hand_back")
def _hand_back(request: HttpRequest, case: Case, d: dict[str, Any]) -> str:
    assignment_hand_back(case_id=case.pk, user=request.user, reason=_reason(d))
    return _("Case handed back; it is being re-routed.")
