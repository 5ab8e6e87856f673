"""The image viewer: the series of a case and each slice rendered server-side as PNG, every read audited."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from apps.accounts.authorization import object_refused
from apps.accounts.decorators import AuthenticatedHttpRequest, clinical_login_required
from apps.audit.services import audit_read
from apps.studies.models import Instance, Series
from apps.worklist import services
from apps.worklist.views import case_or_404


@clinical_login_required
@never_cache
def viewer(request: AuthenticatedHttpRequest, public_id: Any) -> HttpResponse:
    case = case_or_404(request, public_id)
    series = list(Series.objects.filter(study__case=case).select_related("study").order_by("study_id", "number", "pk"))
    instances: dict[int, list[int]] = {s.pk: [] for s in series}
    for sid, iid in (Instance.objects.filter(series__in=series)
                     .order_by("series_id", "instance_number", "pk").values_list("series_id", "pk")):
        instances[sid].append(iid)
    audit_read(case, details={"view": "viewer", "series": [s.pk for s in series]})
    if request.user.role == "radiologist":
        services.case_open(case=case, user=request.user)
    from apps.worklist.imaging import CT_PRESETS  # numpy and pydicom: loaded on first use

    data = [{"id": s.pk, "label": f"{s.number or ''} {s.modality} {s.description}".strip(),
             "modality": s.modality, "instances": instances[s.pk]} for s in series]
    return render(request, "worklist/viewer.html", {
        "case": case, "series": data, "series_json": data, "presets": list(CT_PRESETS)})


@clinical_login_required
def slice_png(request: AuthenticatedHttpRequest, public_id: Any, instance_id: int) -> HttpResponse:
    case = case_or_404(request, public_id)
    from apps.worklist.imaging import instance_file, render_png  # numpy and pydicom: loaded on first use

    inst = Instance.objects.filter(pk=instance_id, study__case=case).first()
    if inst is None:
        object_refused(request, model=Instance, lookup={"pk": instance_id}, site_field="study__site_id")
        raise Http404
    preset = request.GET.get("preset", "")
    frame = request.GET.get("frame", "1")  # 1-based, as DICOMweb numbers frames
    if not frame.isdigit() or int(frame) < 1:
        return HttpResponseBadRequest(_("The frame number must be a whole number from 1."))
    try:
        png = render_png(instance_file(inst.path), preset=preset, frame=int(frame) - 1)
    except (FileNotFoundError, OSError, IndexError) as exc:
        raise Http404 from exc
    except Exception:
        return HttpResponseBadRequest(_("This image cannot be rendered."))
    # The viewer page audited the study; record each series once per session, not each slice.
    seen = set(request.session.get("audited_series", []))
    if inst.series_id not in seen:
        with transaction.atomic():
            audit_read(case, details={"view": "slice", "series": inst.series_id})
        request.session["audited_series"] = sorted(seen | {inst.series_id})[-200:]
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response
