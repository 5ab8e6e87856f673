"""Pages of the clinical web app. Thin: scoping comes from the selectors, writes from the services, and
every read of patient data is audited in the same request."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from apps.accounts.authorization import access_refused, object_refused
from apps.accounts.decorators import AuthenticatedHttpRequest, clinical_login_required
from apps.audit.services import audit_read, audit_record
from apps.core.errors import ApplicationError
from apps.core.redirects import safe_next
from apps.worklist import ohif_release, selectors, services
from apps.worklist.dicom_json import cases_metadata_prepare_request
from apps.worklist.forms import CaseRequestForm
from apps.worklist.models import Case, ExpertRequest, Report, ReportStatus
from apps.worklist.presentation import fmt_duration as _fmt_duration
from apps.worklist.priors.panel import priors_panel
from apps.worklist.report_templates import report_templates_for_editor

SITE_ROLES = selectors.SITE_ROLES


def case_or_404(request: HttpRequest, public_id: Any) -> Case:
    try:
        return selectors.case_get_for_user(user=request.user, public_id=public_id)
    except (Case.DoesNotExist, ValidationError) as exc:
        # Another establishment's case and a missing one get the same 404; the audit trail tells them apart.
        object_refused(request, model=Case, lookup={"public_id": public_id})
        raise Http404 from exc


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "") or request.content_type == "application/json"


# --- Requesting site ---------------------------------------------------------------------------------------


def _site_rows(request: HttpRequest) -> tuple[str, list[Case]]:
    now = timezone.now()
    cases = list(selectors.site_requests(user=request.user, now=now)[:200])
    for c in cases:
        end = c.signed_at if c.signed_at else now
        c.waiting = _fmt_duration(end - c.requested_at)  # type: ignore[attr-defined]
        c.contact = selectors.case_contact(c)  # type: ignore[attr-defined]
    html = render_to_string("worklist/_site_rows.html", {"cases": cases}, request=request)
    return html, cases


def _version(cases: list[Case]) -> str:
    # Routing writes the assignment with queryset updates (updated_at untouched): it is part of the version.
    return str(hash(tuple((c.pk, c.updated_at.isoformat(), c.status, c.assignment_state, c.assigned_to_id,
                           c.claimed_by_id) for c in cases)))


@clinical_login_required
@never_cache
def site_requests(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.user.role not in SITE_ROLES and request.user.role != "ars_coordinator":
        return redirect("worklist:worklist")
    html, cases = _site_rows(request)
    audit_record(action="list", object_type="worklist.case", patient_data=True,
                 details={"view": "site_requests", "case_ids": [c.pk for c in cases]})
    return render(request, "worklist/site_requests.html", {
        "rows_html": html, "version": _version(cases),
        "unmatched_count": selectors.unmatched_studies(user=request.user).count()
        + selectors.ultrasound_studies_received(user=request.user).count()})


@clinical_login_required
@never_cache
def site_requests_rows(request: AuthenticatedHttpRequest) -> JsonResponse:
    html, cases = _site_rows(request)
    version = _version(cases)
    if version == request.GET.get("v"):
        return JsonResponse({"changed": False, "version": version})
    audit_record(action="list", object_type="worklist.case", patient_data=True,
                 details={"view": "site_requests", "case_ids": [c.pk for c in cases]})
    return JsonResponse({"changed": True, "version": version, "html": html})


@clinical_login_required
def request_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.user.role not in ("emergency_physician", "radiographer"):
        return HttpResponseForbidden(_("Only the requesting site's staff can request an interpretation."))
    site_id = request.user.primary_establishment_id
    if site_id is None:
        return HttpResponseForbidden(_("Your account is not attached to an establishment."))
    form = CaseRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            case, created = services.case_create(site_id=site_id, data=form.case_input(),
                                                 requested_by_id=request.user.pk,
                                                 idempotency_key=form.cleaned_data["idempotency_key"])
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errs)
        else:
            if created:
                messages.success(request, _("Request sent."))
            return redirect("worklist:case", public_id=case.public_id)
    return render(request, "worklist/request_form.html", {"form": form})


def _posted_pk(request: HttpRequest, name: str) -> int | None:
    """A primary key posted as plain digits that fits a database integer, else None."""
    value = request.POST.get(name, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


@clinical_login_required
@never_cache
def matching(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The site matches by hand a study that arrived without a recognisable request."""
    if request.user.role not in SITE_ROLES:
        raise Http404
    if request.method == "POST":
        # A field missing, empty, not a number or out of range finds nothing (filter(pk="") raised: a 500).
        study_id, case_id = _posted_pk(request, "study"), _posted_pk(request, "case")
        study = (selectors.unmatched_studies(user=request.user).filter(pk=study_id).first()
                 if study_id is not None else None)
        target = (selectors.requests_awaiting_images(user=request.user).filter(pk=case_id).first()
                  if case_id is not None else None)
        if study is None or target is None:
            messages.error(request, _("Choose a study and a request of your site."))
        else:
            try:
                services.study_match_manual(study_id=study.pk, case_id=target.pk, user=request.user)
                messages.success(request, _("Study matched to the request."))
            except ApplicationError as exc:
                messages.error(request, exc.message)
        return redirect("worklist:matching")
    studies = list(selectors.unmatched_studies(user=request.user)[:100])
    requests = list(selectors.requests_awaiting_images(user=request.user)[:100])
    ultrasound = list(selectors.ultrasound_studies_received(user=request.user)[:100])
    audit_record(action="list", object_type="studies.study", patient_data=True,
                 details={"view": "matching", "study_ids": [s.pk for s in studies + ultrasound],
                          "case_ids": [c.pk for c in requests]})
    return render(request, "worklist/matching.html", {"studies": studies, "requests": requests,
                                                      "ultrasound_studies": ultrasound})


# --- Radiologist worklist ----------------------------------------------------------------------------------


def _worklist_rows(request: HttpRequest) -> tuple[str, list[Case]]:
    modality = request.GET.get("modality", "")
    try:
        site_id = int(request.GET.get("site") or 0) or None
    except ValueError:
        site_id = None
    now = timezone.now()
    cases = list(selectors.radiologist_worklist(user=request.user, modality_code=modality, site_id=site_id)[:200])
    for c in cases:
        c.since_images = _fmt_duration(now - c.images_complete_at) if c.images_complete_at else ""  # type: ignore[attr-defined]
        c.waiting = _fmt_duration(now - c.requested_at)  # type: ignore[attr-defined]
        if c.escalation_due_at:
            left = c.escalation_due_at - now
            c.escalation_left = _fmt_duration(left) if left.total_seconds() > 0 else _("overdue")  # type: ignore[attr-defined]
            c.escalation_overdue = left.total_seconds() <= 0  # type: ignore[attr-defined]
    experts = list(selectors.expert_requests_for(request.user))
    html = render_to_string("worklist/_worklist_rows.html", {
        "cases": cases, "experts": experts, "user": request.user,
        "ohif_installed": ohif_release.installed(settings.PDS_OHIF_ROOT)}, request=request)
    return html, cases


def _prepare_for_reading(case_ids: list[int]) -> None:
    """The studies a "Read" of these cases may open, prepared for the viewer meanwhile (apps.worklist.dicom_json).
    Called when the list is shown or has changed, not at every unchanged refresh."""
    if ohif_release.installed(settings.PDS_OHIF_ROOT):
        cases_metadata_prepare_request(case_ids=case_ids)


@clinical_login_required
@never_cache
def worklist(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.user.role != "radiologist":
        return redirect("worklist:site_requests")
    html, cases = _worklist_rows(request)
    _prepare_for_reading([c.pk for c in cases if c.images_complete_at])
    signed = list(selectors.signed_tonight(user=request.user)[:50])  # the way in to an addendum
    audit_record(action="list", object_type="worklist.case", patient_data=True,
                 details={"view": "worklist", "case_ids": [c.pk for c in [*cases, *signed]]})
    all_cases = selectors.radiologist_worklist(user=request.user)
    sites = sorted({(c.site_id, c.site.name) for c in all_cases}, key=lambda s: s[1])
    from apps.regions.models import Modality

    return render(request, "worklist/worklist.html", {
        "rows_html": html, "version": _version(cases), "sites": sites, "signed": signed,
        "modalities": Modality.objects.filter(teleradiology_eligible=True).order_by("code"),
        "modality": request.GET.get("modality", ""), "site": request.GET.get("site", "")})


@clinical_login_required
@never_cache
def worklist_rows(request: AuthenticatedHttpRequest) -> JsonResponse:
    html, cases = _worklist_rows(request)
    experts_key = str(list(selectors.expert_requests_for(request.user).values_list("pk", flat=True)))
    version = _version(cases) + experts_key
    if version == request.GET.get("v"):
        return JsonResponse({"changed": False, "version": version})
    _prepare_for_reading([c.pk for c in cases if c.images_complete_at])
    audit_record(action="list", object_type="worklist.case", patient_data=True,
                 details={"view": "worklist", "case_ids": [c.pk for c in cases]})
    return JsonResponse({"changed": True, "version": version, "html": html})


# --- One case ----------------------------------------------------------------------------------------------


def _case_version(case: Case) -> str:
    last = case.events.order_by("-pk").values_list("pk", flat=True).first()
    return f"{case.updated_at.isoformat()}|{last}"


def _live_context(request: AuthenticatedHttpRequest, case: Case) -> dict[str, Any]:
    report = Report.objects.filter(case=case).select_related("signed_by").first()
    return {
        "case": case, "events": case.events.select_related("actor"),
        "report": report if report and report.status == ReportStatus.SIGNED else None,
        "addenda": report.addenda.select_related("author") if report else [],
        "opinions": case.expert_requests.select_related("expert", "line"),
        "contact": selectors.case_contact(case),
        "is_site": request.user.role in SITE_ROLES,
        "calls": case.critical_calls.select_related("called_by", "confirmed_by"),
        "radiographers": selectors.site_radiographers(case) if request.user.role in SITE_ROLES else [],
    }


@clinical_login_required
@never_cache
def case_detail(request: AuthenticatedHttpRequest, public_id: Any) -> HttpResponse:
    case = case_or_404(request, public_id)
    audit_read(case, details={"view": "case_detail"})
    ctx = _live_context(request, case)
    if ctx["report"] is not None:  # the signed report is on the page: the site's reading is a receipt
        services.report_delivery_record(case_id=case.pk, channel="web", reader=services.reader_for(request.user))
    ctx["live_html"] = render_to_string("worklist/_case_live.html", ctx, request=request)
    ctx["version"] = _case_version(case)
    ctx["priors"] = priors_panel(case_id=case.pk, user=request.user)  # the site PACS's earlier studies
    if request.user.role == "radiologist":
        _prepare_for_reading([case.pk])
        draft = Report.objects.filter(case=case).first()
        tpl, templates = report_templates_for_editor(case.modality_id, case.exam, draft.template if draft else "")
        ctx.update({
            "draft": draft, "template": tpl, "templates": templates,
            "referral_lines": selectors.referral_subspecialties(case),
            "handoff_to": selectors.radiologists_for_handoff(case, exclude_id=request.user.pk),
            "my_expert_requests": case.expert_requests.filter(expert=request.user, status="open"),
            "has_studies": case.studies.exists(), "ohif_installed": ohif_release.installed(settings.PDS_OHIF_ROOT),
        })
    return render(request, "worklist/case_detail.html", ctx)


@clinical_login_required
@never_cache
def case_live(request: AuthenticatedHttpRequest, public_id: Any) -> JsonResponse:
    case = case_or_404(request, public_id)
    version = _case_version(case)
    payload: dict[str, Any] = {"version": version, "status": case.status, "status_label": case.get_status_display()}
    if version == request.GET.get("v"):
        return JsonResponse({**payload, "changed": False})
    audit_read(case, details={"view": "case_live"})
    ctx = _live_context(request, case)
    if ctx["report"] is not None:
        services.report_delivery_record(case_id=case.pk, channel="web", reader=services.reader_for(request.user))
    html = render_to_string("worklist/_case_live.html", ctx, request=request)
    return JsonResponse({**payload, "changed": True, "html": html})


def _action_response(request: HttpRequest, case: Case, error: str | None = None, ok: str | None = None,
                     status: int = 400, extra: dict[str, Any] | None = None) -> HttpResponse:
    if _wants_json(request):
        if error:
            return JsonResponse({"ok": False, "error": error}, status=status)
        return JsonResponse({"ok": True, "message": ok or "", **(extra or {})})
    if error:
        messages.error(request, error)
    elif ok:
        messages.success(request, ok)
    # next= only to a path of this site: a crafted form or link must not bounce the user elsewhere.
    return redirect(safe_next(request, reverse("worklist:case", args=[case.public_id])))


def _post_data(request: HttpRequest) -> dict[str, Any]:
    if request.content_type == "application/json":
        try:
            return json.loads(request.body or b"{}")
        except ValueError:
            return {}
    return request.POST.dict()


# A case action: the signed-in user's request, the case, the posted data; returns the message on success.
CaseAction = Callable[[AuthenticatedHttpRequest, Case, dict[str, Any]], str]
ACTIONS: dict[str, CaseAction] = {}


def action(name: str) -> Callable[[CaseAction], CaseAction]:
    def register(fn: CaseAction) -> CaseAction:
        ACTIONS[name] = fn
        return fn

    return register


@action("validate")
def _validate(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    services.case_validate(case_id=case.pk, user=request.user, decision=d.get("decision", ""),
                           protocol=d.get("protocol", ""), reason=d.get("reason", ""))
    return _("Decision recorded.")


@action("info")
def _info(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    if request.user.role not in SITE_ROLES:
        raise ApplicationError(_("Only the requesting site answers."))
    services.case_info_provide(case_id=case.pk, user=request.user, answer=d.get("answer", ""))
    return _("Answer sent to the radiologist.")


def _checked(value: Any) -> bool:
    """A checkbox from a form post ("on") or a JSON body (true)."""
    return value in (True, "on", "true", "1")


@action("claim")
def _claim(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    services.case_claim(case_id=case.pk, user=request.user)
    return _("You are reading this case.")


@action("release")
def _release(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    services.case_release(case_id=case.pk, user=request.user, reason=d.get("reason", ""))
    return _("Case released.")


@action("handoff")
def _handoff(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    try:
        to_id = int(d.get("to_user") or 0)
    except ValueError:
        to_id = 0
    services.case_hand_off(case_id=case.pk, user=request.user, to_user_id=to_id, note=d.get("note", ""))
    return _("Case handed off.")


@action("draft")
def _draft(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    fields = {k: str(d[k]) for k in services.REPORT_FIELDS if k in d}
    critical = d.get("critical_finding")
    services.report_draft_save(case_id=case.pk, user=request.user, fields=fields, template=d.get("template", ""),
                               critical_finding=None if critical is None else _checked(critical))
    return _("Draft saved.")


@action("sign")
def _sign(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    fields = {k: str(d[k]) for k in services.REPORT_FIELDS if k in d}
    if fields:
        services.report_draft_save(case_id=case.pk, user=request.user, fields=fields,
                                   template=d.get("template", ""),
                                   critical_finding=_checked(d.get("critical_finding")))
    services.report_sign(case_id=case.pk, user=request.user)
    return _("Report signed and sent to the requesting site.")


@action("addendum")
def _addendum(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    services.addendum_add(case_id=case.pk, user=request.user, text=d.get("text", ""))
    return _("Addendum signed.")


@action("critical_call")
def _critical_call(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    called_at = parse_datetime(d.get("called_at") or "")
    if called_at is not None and timezone.is_naive(called_at):
        called_at = timezone.make_aware(called_at)
    services.critical_call_log(case_id=case.pk, user=request.user, physician_name=d.get("physician_name", ""),
                               called_at=called_at, acknowledged=_checked(d.get("acknowledged")),
                               note=d.get("note", ""))
    return _("Call logged.")


@action("expert_opinion")
def _expert_opinion(request: AuthenticatedHttpRequest, case: Case, d: dict[str, Any]) -> str:
    req = ExpertRequest.objects.filter(pk=d.get("expert_request") or 0, case=case).first()
    if req is None:
        raise ApplicationError(_("Unknown expert request."))
    services.expert_opinion_give(expert_request_id=req.pk, user=request.user, opinion=d.get("opinion", ""))
    return _("Opinion sent.")


@clinical_login_required
@require_POST
def case_action(request: AuthenticatedHttpRequest, public_id: Any, name: str) -> HttpResponse:
    case = case_or_404(request, public_id)
    handler = ACTIONS.get(name)
    if handler is None:
        raise Http404
    try:
        ok = handler(request, case, _post_data(request))
    except ApplicationError as exc:
        if exc.status_code == 403:
            # A rule of the service refused the act to this person (not the claimer, not on the line…).
            access_refused(request, reason="rule", status=403, action=name, object_type="worklist.case",
                           object_id=case.pk, details={"code": exc.code})
        return _action_response(request, case, error=exc.message, status=exc.status_code,
                                extra=exc.extra)
    case.refresh_from_db()
    extra = {}
    if name == "draft":
        report = Report.objects.get(case=case)
        extra = {"saved_at": timezone.localtime(report.draft_saved_at).strftime("%H:%M:%S")}
    return _action_response(request, case, ok=ok, extra=extra)


@clinical_login_required
def case_report_pdf(request: AuthenticatedHttpRequest, public_id: Any) -> HttpResponse:
    case = case_or_404(request, public_id)
    report = Report.objects.filter(case=case, status=ReportStatus.SIGNED).select_related("signed_by").first()
    if report is None:
        raise Http404
    from apps.worklist.pdf import report_pdf

    audit_read(case, details={"view": "report_pdf"})
    services.report_delivery_record(case_id=case.pk, channel="pdf", reader=services.reader_for(request.user))
    response = HttpResponse(report_pdf(report), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="report-{case.pk}.pdf"'
    return response
