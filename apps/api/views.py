"""The RIS API (v1): thin views over apps.api.selectors (reads, always scoped) and services (writes).

Every response carrying patient data writes an audit entry (channel "api") in the request.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import django_filters
from django.db import transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api import fhir, selectors
from apps.api import serializers as s
from apps.api.authentication import ApiKeyAuthentication, Integration, SessionAuthentication
from apps.api.models import WebhookSubscription
from apps.api.permissions import IntegrationOnly, ScopedAccess
from apps.api.throttles import ApiKeyRateThrottle
from apps.audit.services import audit_read, audit_record
from apps.core.errors import ApplicationError, NotFoundError
from apps.regions.models import Establishment
from apps.studies.models import Study
from apps.worklist.models import Case, CaseStatus, Origin, Urgency

PARIS = ZoneInfo("Europe/Paris")
UUID_RE = r"[0-9a-fA-F-]{36}"
PROBLEM = OpenApiResponse(s.ProblemSerializer, description="Problem document (RFC 9457).")
ERRORS: dict[Any, Any] = {(code, "application/problem+json"): PROBLEM for code in (400, 401, 403, 404, 429)}


class ApiView(APIView):
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [ScopedAccess]
    throttle_classes = [ApiKeyRateThrottle]


class ApiViewSet(viewsets.GenericViewSet):
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [ScopedAccess]
    throttle_classes = [ApiKeyRateThrottle]

    def get_object(self) -> Any:
        # A malformed or out-of-range identifier is "not found", never a database error.
        value = str(self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, ""))
        if self.lookup_field == "public_id":
            import uuid

            try:
                uuid.UUID(value)
            except ValueError as exc:
                raise NotFoundError("No such resource.") from exc
        elif not (value.isdigit() and len(value) <= 18):
            raise NotFoundError("No such resource.")
        return super().get_object()


def _audit_list(object_type: str, ids: list[Any], *, view: str) -> None:
    if ids:
        audit_record(action="list", object_type=object_type, object_id="", object_repr=view, patient_data=True,
                     details={"ids": [str(i) for i in ids][:200]})


# --- Establishments ------------------------------------------------------------

@extend_schema_view(list=extend_schema(summary="Establishments of the region", responses={200: s.EstablishmentSerializer(many=True), **ERRORS}),
                    retrieve=extend_schema(summary="One establishment", responses={200: s.EstablishmentSerializer, **ERRORS}))
class EstablishmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.EstablishmentSerializer
    queryset = Establishment.objects.none()  # for the schema; get_queryset scopes every request
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        return selectors.establishments_visible_to(self.request.user)


# --- Interpretation requests ------------------------------------------------------

class RequestFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=CaseStatus.choices)
    urgency = django_filters.ChoiceFilter(choices=Urgency.choices)
    origin = django_filters.ChoiceFilter(choices=Origin.choices)
    modality = django_filters.CharFilter(field_name="modality_id", max_length=4)
    accession_number = django_filters.CharFilter(max_length=64)
    local_patient_id = django_filters.CharFilter(max_length=64)
    requested_after = django_filters.IsoDateTimeFilter(field_name="requested_at", lookup_expr="gte")
    requested_before = django_filters.IsoDateTimeFilter(field_name="requested_at", lookup_expr="lt")


IDEMPOTENCY = OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                               description="Retrying a POST with the same key returns the request created first "
                                           "(200) instead of a duplicate. At most 100 characters.")


def _same_request_or_conflict(case: Any, data: dict[str, Any]) -> None:
    """A retried POST must be the same request: a reused key with another patient or exam is an error."""
    fields = {"patient_birth_name": case.patient_birth_name, "patient_first_names": case.patient_first_names,
              "patient_birth_date": case.patient_birth_date, "modality_code": case.modality_id, "exam": case.exam}
    differing = sorted(k for k, v in fields.items() if data.get(k) != v)
    if differing:
        raise ApplicationError("This Idempotency-Key was already used for a different request.",
                               code="idempotency_key_reused", status_code=422,
                               extra={"Idempotency-Key": [f"Already used; differs on: {', '.join(differing)}."]})


class PDFRenderer(renderers.BaseRenderer):
    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if isinstance(data, bytes | bytearray):
            return bytes(data)
        return json.dumps(data).encode()


@extend_schema_view(
    list=extend_schema(summary="Interpretation requests (filtered, paginated)"),
    retrieve=extend_schema(summary="One interpretation request", responses={200: s.RequestOutputSerializer, **ERRORS}),
)
class RequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.RequestOutputSerializer
    queryset = Case.objects.none()
    filterset_class = RequestFilter
    lookup_field = "public_id"
    lookup_value_regex = UUID_RE

    def get_queryset(self) -> Any:
        return selectors.cases_visible_to(self.request.user).order_by("-requested_at", "-pk")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        results = response.data.get("results", []) if isinstance(response.data, dict) else response.data
        _audit_list("worklist.case", [r["id"] for r in results], view="api requests list")
        return response

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        case = self.get_object()
        audit_read(case)
        return Response(s.RequestOutputSerializer(case).data)

    @extend_schema(summary="Create an interpretation request", request=s.RequestInputSerializer,
                   parameters=[IDEMPOTENCY],
                   responses={201: s.RequestOutputSerializer, 200: s.RequestOutputSerializer,
                              (422, "application/problem+json"): PROBLEM, **ERRORS})
    def create(self, request: Request) -> Response:
        from apps.worklist.services import CaseInput, case_create

        key = request.headers.get("Idempotency-Key") or None
        if key is not None and (len(key) > 100 or not key.isprintable()):
            raise ApplicationError("Idempotency-Key must be at most 100 printable characters.",
                                   code="invalid", extra={"Idempotency-Key": ["Too long or not printable."]})
        ser = s.RequestInputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        data["modality_code"] = data.pop("modality")
        user = request.user
        if isinstance(user, Integration):
            site_id, requested_by_id = user.establishment_id, None
        else:
            site_id, requested_by_id = user.primary_establishment_id, user.pk
            if site_id is None:
                raise ApplicationError("Your account belongs to no establishment.", code="no_establishment")
        case, created = case_create(site_id=site_id, data=CaseInput(**data), requested_by_id=requested_by_id,
                                    origin=Origin.API, idempotency_key=key)
        case = self.get_queryset().get(pk=case.pk)
        if not created:
            _same_request_or_conflict(case, data)
            audit_read(case, details={"idempotent_replay": True})
        return Response(s.RequestOutputSerializer(case).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(summary="Cancel an open request", request=s.CancelInputSerializer,
                   responses={200: s.RequestOutputSerializer, (409, "application/problem+json"): PROBLEM, **ERRORS})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, public_id: str) -> Response:
        from apps.api.services import case_cancel

        case = self.get_object()
        ser = s.CancelInputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        case = case_cancel(case_id=case.pk, user_or_actor=request.user, reason=ser.validated_data["reason"])
        return Response(s.RequestOutputSerializer(self.get_queryset().get(pk=case.pk)).data)

    @extend_schema(summary="Timeline of a request", responses={200: s.CaseEventSerializer(many=True), **ERRORS})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def events(self, request: Request, public_id: str) -> Response:
        case = self.get_object()
        audit_read(case, details={"view": "events"})
        return Response(s.CaseEventSerializer(case.events.all(), many=True).data)

    def _signed_report(self) -> Any:
        from apps.worklist.models import Report, ReportStatus

        case = self.get_object()
        report = (Report.objects.select_related("case", "author", "signed_by").prefetch_related("addenda__author")
                  .filter(case=case, status=ReportStatus.SIGNED).first())
        if report is None:
            raise NotFoundError("No signed report for this request yet.", code="no_report")
        audit_read(report)
        return report

    @extend_schema(summary="Signed report (JSON)", responses={200: s.ReportSerializer, **ERRORS})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def report(self, request: Request, public_id: str) -> Response:
        return Response(s.ReportSerializer(self._signed_report()).data)

    @extend_schema(summary="Signed report (PDF)", responses={(200, "application/pdf"): OpenApiTypes.BINARY,
                                                            **ERRORS})
    @action(detail=True, methods=["get"], url_path="report/pdf", pagination_class=None, filter_backends=[],
            renderer_classes=[PDFRenderer, renderers.JSONRenderer])
    def report_pdf(self, request: Request, public_id: str) -> Response:
        from apps.api.reports import report_pdf

        report = self._signed_report()
        resp = Response(report_pdf(report), content_type="application/pdf")
        resp["Content-Disposition"] = f'inline; filename="report-{report.case.public_id}.pdf"'
        return resp

    @extend_schema(summary="Addenda of the signed report", responses={200: s.AddendumSerializer(many=True), **ERRORS})
    @action(detail=True, methods=["get"], url_path="report/addenda", pagination_class=None, filter_backends=[])
    def addenda(self, request: Request, public_id: str) -> Response:
        return Response(s.AddendumSerializer(self._signed_report().addenda.all(), many=True).data)

    @extend_schema(summary="Assignment of a request (who reads it)", responses={200: s.AssignmentSerializer,
                                                                                **ERRORS})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def assignment(self, request: Request, public_id: str) -> Response:
        case = self.get_object()
        audit_read(case, details={"view": "assignment"})
        return Response(s.AssignmentSerializer(case).data)


    @extend_schema(summary="Tele-act record (JSON, PDF or FHIR Bundle)",
                   parameters=[OpenApiParameter("export", OpenApiTypes.STR, enum=["json", "pdf", "fhir"],
                                                required=False, description="Format, json by default.")],
                   responses={(200, "application/json"): OpenApiTypes.OBJECT,
                              (200, "application/pdf"): OpenApiTypes.BINARY,
                              (200, "application/fhir+json"): OpenApiTypes.OBJECT, **ERRORS})
    @action(detail=True, methods=["get"], url_path="tele-act", pagination_class=None, filter_backends=[])
    def tele_act(self, request: Request, public_id: str) -> Any:
        from django.http import HttpResponse

        fmt = request.query_params.get("export", "json")
        if fmt not in ("json", "pdf", "fhir"):
            raise ApplicationError("Unknown export format.", extra={"export": ["Choose json, pdf or fhir."]})
        case = self.get_object()
        try:
            from apps.traceability.services import teleact_record_export
        except ImportError as exc:
            raise _not_available("The tele-act record") from exc
        export = teleact_record_export(case=case, fmt=fmt)
        resp = HttpResponse(export.content, content_type=export.content_type)
        resp["Content-Disposition"] = f'inline; filename="{export.filename}"'
        return resp


# --- Worklist ------------------------------------------------------------------------

@extend_schema_view(list=extend_schema(
    summary="Worklist: open requests by urgency (a radiologist's own queue with a session)"))
class WorklistViewSet(mixins.ListModelMixin, ApiViewSet):
    serializer_class = s.RequestOutputSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        return selectors.worklist_for(self.request.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        results = response.data.get("results", []) if isinstance(response.data, dict) else response.data
        _audit_list("worklist.case", [r["id"] for r in results], view="api worklist")
        return response


# --- Studies ---------------------------------------------------------------------------

class StudyFilter(django_filters.FilterSet):
    status = django_filters.CharFilter(max_length=12)
    accession_number = django_filters.CharFilter(max_length=64)
    matched = django_filters.BooleanFilter(field_name="case", lookup_expr="isnull", exclude=True)


@extend_schema_view(list=extend_schema(summary="Studies received (status, counts, matching)"),
                    retrieve=extend_schema(summary="One study", responses={200: s.StudySerializer, **ERRORS}))
class StudyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.StudySerializer
    queryset = Study.objects.none()
    filterset_class = StudyFilter

    def get_queryset(self) -> Any:
        return selectors.studies_visible_to(self.request.user).prefetch_related("series").order_by("-pk")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        results = response.data.get("results", []) if isinstance(response.data, dict) else response.data
        _audit_list("studies.study", [r["id"] for r in results], view="api studies list")
        return response

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        study = self.get_object()
        audit_read(study)
        return Response(s.StudySerializer(study).data)


# --- On-call -----------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    """Plain JSON from the rosters/routing contracts (frozen dataclasses, models, dates)."""
    import dataclasses

    from django.db import models

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, models.Model):
        return {"id": value.pk, "name": getattr(value, "display_name", None) or str(value)}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _not_available(what: str) -> ApplicationError:
    return ApplicationError(f"{what} is not available on this platform yet.", code="not_available", status_code=503)


class OnDutyView(ApiView):
    @extend_schema(summary="Who is on duty for modality M at site S at time T",
                   parameters=[s.OnDutyQuerySerializer], responses={200: OpenApiTypes.OBJECT, (503, "application/problem+json"): PROBLEM, **ERRORS})
    def get(self, request: Request) -> Response:
        q = s.OnDutyQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        site_id = q.validated_data["site"]
        if not selectors.establishments_visible_to(request.user).filter(pk=site_id).exists():
            raise NotFoundError("No such establishment.", extra={"site": ["Unknown establishment."]})
        at = q.validated_data.get("at") or timezone.now()
        try:
            from apps.routing.selectors import on_duty
        except ImportError as exc:
            raise _not_available("On-call lookup") from exc
        result = on_duty(site_id=site_id, modality_code=q.validated_data["modality"].upper(), at=at)
        return Response({"site": site_id, "modality": q.validated_data["modality"].upper(), "at": at.isoformat(),
                         "on_duty": _jsonable(result)})


class CoverageView(ApiView):
    @extend_schema(summary="Tonight's coverage of the region (or a whole week with week_start)",
                   description="Without week_start: the cells of the PDS period in progress at `at` (default now), "
                               "or of the next one (tonight). With week_start: the seven days from that Monday.",
                   parameters=[s.CoverageQuerySerializer],
                   responses={200: OpenApiTypes.OBJECT, (503, "application/problem+json"): PROBLEM, **ERRORS})
    def get(self, request: Request) -> Response:
        q = s.CoverageQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        region_id = selectors.region_id_of(request.user)
        if region_id is None:
            raise NotFoundError("No region for this caller.")
        try:
            from apps.rosters.selectors import coverage_report
        except ImportError as exc:
            raise _not_available("Coverage report") from exc
        site_id = q.validated_data.get("site")
        week_start = q.validated_data.get("week_start")
        if week_start is not None:
            week_start -= dt.timedelta(days=week_start.weekday())
            cells = list(coverage_report(region_id=region_id, week_start=week_start).cells)
        else:
            at = q.validated_data.get("at") or timezone.now()
            day = at.astimezone(PARIS).date()
            monday = day - dt.timedelta(days=day.weekday())
            cells = []
            # The period in progress may have started last week (Sunday night); the next one may be next week.
            for ws in (monday - dt.timedelta(days=7), monday, monday + dt.timedelta(days=7)):
                cells += [c for c in coverage_report(region_id=region_id, week_start=ws).cells if c.end > at]
            if cells:
                first = min(c.start for c in cells)
                cells = [c for c in cells if c.start == first]
            week_start = monday
        if site_id is not None:
            cells = [c for c in cells if getattr(c, "site_id", None) == site_id]
        return Response({"region": region_id, "week_start": week_start.isoformat(), "cells": _jsonable(cells)})


# --- Webhooks ------------------------------------------------------------------------------

@extend_schema_view(
    list=extend_schema(summary="Webhook subscriptions of this integration"),
    retrieve=extend_schema(summary="One webhook subscription", responses={200: s.WebhookOutputSerializer, **ERRORS}),
    destroy=extend_schema(summary="Unsubscribe", responses={204: None, **ERRORS}),
)
class WebhookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, ApiViewSet):
    permission_classes = [ScopedAccess, IntegrationOnly]
    serializer_class = s.WebhookOutputSerializer
    queryset = WebhookSubscription.objects.none()
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        from apps.api.models import WebhookSubscription

        user = self.request.user
        if not isinstance(user, Integration):
            return WebhookSubscription.objects.none()
        return WebhookSubscription.objects.filter(api_key_id=user.key_id, active=True).order_by("pk")

    @extend_schema(summary="Subscribe a URL to events (the HMAC secret is shown once)",
                   request=s.WebhookInputSerializer, responses={201: s.WebhookCreatedSerializer, **ERRORS})
    def create(self, request: Request) -> Response:
        from apps.api.models import ApiKey
        from apps.api.services import webhook_subscription_create

        ser = s.WebhookInputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        key = ApiKey.objects.get(pk=request.user.key_id)
        sub = webhook_subscription_create(api_key=key, url=ser.validated_data["url"],
                                          events=list(ser.validated_data["events"]))
        return Response(s.WebhookCreatedSerializer(sub).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Any) -> None:
        from apps.api.services import webhook_subscription_delete

        webhook_subscription_delete(subscription=instance)

    @extend_schema(summary="Recent deliveries of a subscription (with their outcome)",
                   responses={200: s.WebhookDeliverySerializer(many=True), **ERRORS})
    @action(detail=True, methods=["get"], pagination_class=None)
    def deliveries(self, request: Request, pk: str) -> Response:
        sub = self.get_object()
        qs = sub.deliveries.select_related("case").order_by("-created_at", "-pk")[:100]
        return Response(s.WebhookDeliverySerializer(qs, many=True).data)


# --- FHIR R4 -------------------------------------------------------------------------------

class FhirJSONRenderer(renderers.JSONRenderer):
    media_type = "application/fhir+json"
    format = "fhir"


FHIR_OK = {(200, "application/fhir+json"): OpenApiTypes.OBJECT, **ERRORS}


class FhirView(ApiView):
    renderer_classes = [FhirJSONRenderer, renderers.JSONRenderer]

    def build(self, request: Request, resource_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def get(self, request: Request, resource_id: str) -> Response:
        with transaction.atomic():
            return Response(self.build(request, resource_id))


def _case_or_404(request: Request, resource_id: str) -> Any:
    import uuid

    try:
        uid = uuid.UUID(resource_id)
    except ValueError as exc:
        raise NotFoundError("No such resource.") from exc
    case = selectors.cases_visible_to(request.user).filter(public_id=uid).first()
    if case is None:
        raise NotFoundError("No such resource.")
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
        return fhir.diagnostic_report(report)


class FhirImagingStudyView(FhirView):
    @extend_schema(summary="FHIR R4 ImagingStudy (id = study id)", responses=FHIR_OK)
    def get(self, request: Request, resource_id: str) -> Response:
        return super().get(request, resource_id)

    def build(self, request: Request, resource_id: str) -> dict[str, Any]:
        if not resource_id.isdigit() or len(resource_id) > 18:
            raise NotFoundError("No such resource.")
        study = selectors.studies_visible_to(request.user).prefetch_related("series").filter(
            pk=int(resource_id)).first()
        if study is None:
            raise NotFoundError("No such resource.")
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
            raise NotFoundError("No such resource.")
        return fhir.organization(est)


class FhirPractitionerView(FhirView):
    @extend_schema(summary="FHIR R4 Practitioner (radiologist or emergency physician)", responses=FHIR_OK)
    def get(self, request: Request, resource_id: str) -> Response:
        return super().get(request, resource_id)

    def build(self, request: Request, resource_id: str) -> dict[str, Any]:
        user = (selectors.practitioners_visible_to(request.user).filter(pk=int(resource_id)).first()
                if resource_id.isdigit() and len(resource_id) <= 18 else None)
        if user is None:
            raise NotFoundError("No such resource.")
        return fhir.practitioner(user)
