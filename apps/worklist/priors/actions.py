"""The case actions of the priors: retrieve a prior on demand (POST ``…/do/prior_retrieve`` with ``prior``) and query
the site PACS again after a failure (``…/do/priors_query``), CSRF-checked, registered in the case actions when WorklistConfig.ready() imports this module. A role that may not is refused
with 403, audited by the case action view; another establishment's case is a 404, audited by ``case_or_404``."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from apps.accounts.decorators import AuthenticatedHttpRequest
from apps.core.errors import PermissionDeniedError
from apps.worklist.models import Case
from apps.worklist.priors.panel import RETRIEVER_ROLES
from apps.worklist.priors.services import prior_retrieve_request, priors_query_retry
from apps.worklist.views import action


@action("prior_retrieve")
def _prior_retrieve(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    if request.user.role not in RETRIEVER_ROLES:
        raise PermissionDeniedError(_("Your role may not retrieve prior studies."))
    text = str(d.get("prior") or "")
    prior_id = int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else 0
    prior_retrieve_request(case_id=case.pk, prior_id=prior_id, user=request.user)
    return _("Retrieval of the prior study requested from the site PACS.")


@action("priors_query")
def _priors_query(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    if request.user.role not in RETRIEVER_ROLES:
        raise PermissionDeniedError(_("Your role may not query the site PACS."))
    priors_query_retry(case_id=case.pk, user=request.user)
    return _("The site PACS will be queried again.")
