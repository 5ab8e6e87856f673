"""FHIR R4 reads of the RIS API: ServiceRequest, ImagingStudy, DiagnosticReport, Organization, Practitioner."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import renderers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.authorization import object_refused
from apps.accounts.models import User
from apps.api import fhir, selectors
from apps.api.views.base import ERRORS, ApiView
from apps.audit.services import audit_read
from apps.core.errors import NotFoundError
from apps.regions.models import Establishment
from apps.studies.models import Study
from apps.worklist.models import Case
from apps.worklist.services import reader_for, report_delivery_record

# --- FHIR R4 -------------------------------------------------------------------------------

class FhirJSONRenderer(renderers.JSONRenderer):
    media_type = "application/fhir+json"
    format = "fhir"


# FHIR JSON by default; plain JSON (the same document) for Accept: application/json or ?format=json.
FHIR_OK = {(200, "application/fhir+json"): OpenApiTypes.OBJECT, (200, "application/json"): OpenApiTypes.OBJECT,
           **ERRORS}


class NotVisible(NotFoundError):
    """A resource outside the caller's perimeter, or none at all: the same 404 either way."""

    def __init__(self, model: Any, lookup: dict[str, Any], site_field: str | None = "site_id") -> None:
        super().__init__("No such resource.")
        self.model, self.lookup, self.site_field = model, lookup, site_field


class FhirView(ApiView):
    renderer_classes = [FhirJSONRenderer, renderers.JSONRenderer]

    def build(self, request: Request, resource_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def get(self, request: Request, resource_id: str) -> Response:
        try:
            with transaction.atomic():
                return Response(self.build(request, resource_id))
        except NotVisible as exc:
            # Audited once the atomic block is over: the refusal must not roll back with it.
            object_refused(request, model=exc.model, lookup=exc.lookup, site_field=exc.site_field)
            raise


def _case_or_404(request: Request, resource_id: str) -> Any:
    import uuid

    try:
        uid = uuid.UUID(resource_id)
    except ValueError as exc:
        raise NotVisible(Case, {"public_id": resource_id}) from exc
    case = selectors.cases_visible_to(request.user).filter(public_id=uid).first()
    if case is None:
        raise NotVisible(Case, {"public_id": uid})
    return case


class FhirServiceRequestView(FhirView):
    @extend_schema(summary="FHIR R4 ServiceRequest (interpretation request)", responses=FHIR_OK)
    def get(self, request: Request, resource_id: str) -> Response:
        return super().get(request, resource_id)

    def build(self, request: Request, resource_id: str) -> dict[str, Any]:
        case = _case_or_404(request, resource_id)
        audit_read(case, details={"view": "fhir ServiceRequest"})
        return fhir.service_request(case)


class FhirDiagnosticReportView(FhirView):
    @extend_schema(summary="FHIR R4 DiagnosticReport (signed report, id = request id)", responses=FHIR_OK)
    def get(self, request: Request, resource_id: str) -> Response:
        return super().get(request, resource_id)

    def build(self, request: Request, resource_id: str) -> dict[str, Any]:
        from apps.worklist.models import Report, ReportStatus

        case = _case_or_404(request, resource_id)
        report = (Report.objects.select_related("case").prefetch_related("addenda")
                  .filter(case=case, status=ReportStatus.SIGNED).first())
        if report is None:
            raise NotFoundError("No signed report for this request yet.")
        audit_read(report, details={"view": "fhir DiagnosticReport"})
        report_delivery_record(case_id=report.case_id, channel="api", reader=reader_for(request.user))
        return fhir.diagnostic_report(report)


class FhirImagingStudyView(FhirView):
    @extend_schema(summary="FHIR R4 ImagingStudy (id = study id)", responses=FHIR_OK)
    def get(self, request: Request, resource_id: str) -> Response:
        return super().get(request, resource_id)

    def build(self, request: Request, resource_id: str) -> dict[str, Any]:
        if not resource_id.isdigit() or len(resource_id) > 18:
            raise NotVisible(Study, {"pk": resource_id})
        study = selectors.studies_visible_to(request.user).prefetch_related("series").filter(
            pk=int(resource_id)).first()
        if study is None:
            raise NotVisible(Study, {"pk": resource_id})
        audit_read(study, details={"view": "fhir ImagingStudy"})
        return fhir.imaging_study(study)


class FhirOrganizationView(FhirView):
    @extend_schema(summary="FHIR R4 Organization (establishment)", responses=FHIR_OK)
    def get(self, request: Request, resource_id: str) -> Response:
        return super().get(request, resource_id)

    def build(self, request: Request, resource_id: str) -> dict[str, Any]:
        est = (selectors.establishments_visible_to(request.user).filter(pk=int(resource_id)).first()
               if resource_id.isdigit() and len(resource_id) <= 18 else None)
        if est is None:
            raise NotVisible(Establishment, {"pk": resource_id}, site_field=None)
        return fhir.organization(est)


class FhirPractitionerView(FhirView):
    @extend_schema(summary="FHIR R4 Practitioner (radiologist or emergency physician)", responses=FHIR_OK)
    def get(self, request: Request, resource_id: str) -> Response:
        return super().get(request, resource_id)

    def build(self, request: Request, resource_id: str) -> dict[str, Any]:
        user = (selectors.practitioners_visible_to(request.user).filter(pk=int(resource_id)).first()
                if resource_id.isdigit() and len(resource_id) <= 18 else None)
        if user is None:
            raise NotVisible(User, {"pk": resource_id}, site_field=None)
        return fhir.practitioner(user)
