from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.accounts.authorization import object_refused
from apps.audit.services import audit_read
from apps.traceability.labels import record_display
from apps.traceability.selectors import case_for_record, teleact_record_build, teleact_record_for
from apps.traceability.services import EXPORT_FORMATS, teleact_record_export


def _case_or_404(request: HttpRequest, public_id: uuid.UUID):  # type: ignore[no-untyped-def]
    case = case_for_record(user=request.user, public_id=public_id)
    if case is None:
        # The same 404 for another establishment's case and a missing one; the audit trail tells them apart.
        object_refused(request, model="worklist.case", lookup={"public_id": public_id})
        raise Http404
    return case


@require_GET
@login_required
def record_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    case = _case_or_404(request, public_id)
    doc = record_display(teleact_record_build(case, for_export=False))
    audit_read(case, details={"view": "teleact_record"})
    return render(request, "traceability/record.html", {
        "case": case, "doc": doc, "frozen": teleact_record_for(case.pk), "formats": list(EXPORT_FORMATS)})


@require_GET
@login_required
def record_download(request: HttpRequest, public_id: uuid.UUID, fmt: str) -> HttpResponse:
    if fmt not in EXPORT_FORMATS:
        raise Http404
    case = _case_or_404(request, public_id)
    export = teleact_record_export(case=case, fmt=fmt)
    response = HttpResponse(export.content, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response
