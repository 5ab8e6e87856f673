"""More case actions: the requesting site's acts (the radiographer logs the acquisition, the physician confirms a
critical finding call) and the request for a sub-specialty opinion. Registered in the case actions
(``apps.worklist.views.action``) when WorklistConfig.ready() imports this module."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from apps.accounts.decorators import AuthenticatedHttpRequest
from apps.worklist import services
from apps.worklist.models import Case
from apps.worklist.views import action


def _int(value: Any) -> int | None:
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


@action("acquisition")
def _acquisition(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    services.acquisition_log(case_id=case.pk, user=request.user, radiographer_id=_int(d.get("radiographer")))
    return _("Acquisition logged.")


@action("critical_confirm")
def _critical_confirm(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    services.critical_call_confirm(case_id=case.pk, call_id=_int(d.get("call")) or 0, user=request.user)
    return _("Receipt of the critical finding confirmed.")


@action("expert")
def _expert(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    """The sub-specialty picks the referral centre's line (apps.worklist.services.expert); a line may be named."""
    services.expert_request_create(case_id=case.pk, user=request.user, line_id=_int(d.get("line")),
                                   subspecialty=str(d.get("subspecialty", "")), question=str(d.get("question", "")))
    return _("Expert opinion requested.")
