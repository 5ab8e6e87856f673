"""The priors' section of the case page, polled: re-rendered when a state changed (listed, retrieving, retrieved,
failed), as the case's live part is (``static/worklist/app.js``, any element with ``data-live-url``)."""

from __future__ import annotations

from typing import Any

from django.http import Http404, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache

from apps.accounts.decorators import AuthenticatedHttpRequest, clinical_login_required
from apps.audit.services import audit_read
from apps.worklist.priors.panel import priors_panel
from apps.worklist.views import case_or_404


@clinical_login_required
@never_cache
def case_priors(request: AuthenticatedHttpRequest, public_id: Any) -> JsonResponse:
    case = case_or_404(request, public_id)
    panel = priors_panel(case_id=case.pk, user=request.user, ask=False)
    if panel is None:
        raise Http404
    if panel.version == request.GET.get("v"):
        return JsonResponse({"changed": False, "version": panel.version})
    audit_read(case, details={"view": "case_priors"})
    html = render_to_string("worklist/_priors.html", {"case": case, "priors": panel}, request=request)
    return JsonResponse({"changed": True, "version": panel.version, "html": html})
