"""REST resources of the RIS API: establishments, interpretation requests, worklist and studies."""

from __future__ import annotations

import json
import re
from typing import Any

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, renderers, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api import selectors
from apps.api import serializers as s
from apps.api.authentication import Integration
from apps.api.query import RecentDateTimeFilter, StrictBooleanFilter, text_filter
from apps.api.selectors import modality_choices
from apps.api.views.base import ERRORS, PROBLEM, UUID_RE, ApiViewSet, audit_list, not_available
from apps.audit.services import audit_read
from apps.core.errors import ApplicationError, NotFoundError
from apps.regions.models import Establishment
from apps.studies.models import Study, StudyStatus
from apps.worklist.models import Case, CaseStatus, Origin, Urgency
from apps.worklist.services import reader_for, report_delivery_record

# --- Establishments ------------------------------------------------------------

@extend_schema_view(list=extend_schema(summary="Establishments of the region", responses={200: s.EstablishmentSerializer(many=True), **ERRORS}),
                    retrieve=extend_schema(summary="One establishment", responses={200: s.EstablishmentSerializer, **ERRORS}))
class EstablishmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.EstablishmentSerializer
    queryset = Establishment.objects.none()  # for the schema; get_queryset scopes every request
    filter_backends: list[Any] = []
    refusal_site_field = None

    def get_queryset(self) -> Any:
        return selectors.establishments_visible_to(self.request.user)


# --- Interpretation requests ------------------------------------------------------

class RequestFilter(django_filters.FilterSet):
    # Strict filters (apps.api.query): a value they refuse is a 400, never "no filter".
    status = django_filters.MultipleChoiceFilter(choices=CaseStatus.choices)
    urgency = django_filters.ChoiceFilter(choices=Urgency.choices)
    origin = django_filters.ChoiceFilter(choices=Origin.choices)
    modality = django_filters.ChoiceFilter(field_name="modality_id", choices=modality_choices)
    accession_number = text_filter(64)
    local_patient_id = text_filter(64)
    requested_after = RecentDateTimeFilter(field_name="requested_at", lookup_expr="gte")
    requested_before = RecentDateTimeFilter(field_name="requested_at", lookup_expr="lt")


# Visible ASCII, inner spaces allowed: what an HTTP header carries unchanged (no leading or trailing space).
IDEMPOTENCY_KEY = "[!-~](?:[ -~]*[!-~])?"
IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 100, "pattern": f"^(?:{IDEMPOTENCY_KEY})$"},
    OpenApiParameter.HEADER, required=False,
    description="Retrying a POST with the same key returns the request created first (200) instead of a "
                "duplicate. 1 to 100 visible ASCII characters (inner spaces allowed).")


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
    query_serializers = {"tele_act": s.TeleActQuerySerializer}
    lookup_field = "public_id"
    lookup_value_regex = UUID_RE

    def get_queryset(self) -> Any:
        return (selectors.cases_visible_to(self.request.user)
                .select_related("assigned_to", "assigned_line", "claimed_by").order_by("-requested_at", "-pk"))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        results = response.data.get("results", []) if isinstance(response.data, dict) else response.data
        audit_list("worklist.case", [r["id"] for r in results], view="api requests list")
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

        key = request.headers.get("Idempotency-Key")
        if key is not None and (len(key) > 100 or not re.fullmatch(IDEMPOTENCY_KEY, key)):
            raise serializers.ValidationError({"Idempotency-Key": [
                "1 to 100 visible ASCII characters (inner spaces allowed)."]})
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
        try:
            case, created = case_create(site_id=site_id, data=CaseInput(**data), requested_by_id=requested_by_id,
                                        origin=Origin.API, idempotency_key=key)
        except ApplicationError as exc:
            # The body matched the schema (the serializer passed it): a refusal now is the domain's (the
            # patient opposes tele-medicine), a 422, not a malformed request.
            if exc.status_code == 400:
                exc.status_code = 422
            raise
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
        from apps.worklist.services import case_cancel

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
        # The RIS (or a site's person through the API) received the report: a receipt, once per reader.
        report_delivery_record(case_id=case.pk, channel="api", reader=reader_for(self.request.user))
        return report

    @extend_schema(summary="Signed report (JSON)", responses={200: s.ReportSerializer, **ERRORS})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def report(self, request: Request, public_id: str) -> Response:
        return Response(s.ReportSerializer(self._signed_report()).data)

    @extend_schema(summary="Signed report (PDF)", responses={(200, "application/pdf"): OpenApiTypes.BINARY,
                                                            **ERRORS})
    @action(detail=True, methods=["get"], url_path="report/pdf", pagination_class=None, filter_backends=[],
            renderer_classes=[PDFRenderer])  # one representation; a problem document still goes out as JSON
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
                   parameters=[s.TeleActQuerySerializer],
                   responses={(200, "application/json"): OpenApiTypes.OBJECT,
                              (200, "application/pdf"): OpenApiTypes.BINARY,
                              (200, "application/fhir+json"): OpenApiTypes.OBJECT, **ERRORS})
    @action(detail=True, methods=["get"], url_path="tele-act", pagination_class=None, filter_backends=[])
    def tele_act(self, request: Request, public_id: str) -> Any:
        from django.http import HttpResponse

        q = s.TeleActQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        fmt = q.validated_data["export"]
        case = self.get_object()
        try:
            from apps.traceability.services import teleact_record_export
        except ImportError as exc:
            raise not_available("The tele-act record") from exc
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
        audit_list("worklist.case", [r["id"] for r in results], view="api worklist")
        return response


# --- Studies ---------------------------------------------------------------------------

class StudyFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=StudyStatus.choices)
    accession_number = text_filter(64)
    matched = StrictBooleanFilter(field_name="case", lookup_expr="isnull", exclude=True)


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
        audit_list("studies.study", [r["id"] for r in results], view="api studies list")
        return response

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        study = self.get_object()
        audit_read(study)
        return Response(s.StudySerializer(study).data)
