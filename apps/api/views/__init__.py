"""The RIS API (v1): thin views over apps.api.selectors (reads, always scoped) and services (writes).

Every response carrying patient data writes an audit entry (channel "api") in the request. One module per
surface: ``rest`` (establishments, requests, worklist, studies), ``on_call``, ``webhooks`` and ``fhir``, on
the shared ground of ``base``; the names below stay importable from ``apps.api.views``.
"""

from apps.api.views.base import ApiView, ApiViewSet
from apps.api.views.fhir import (
    FhirDiagnosticReportView,
    FhirImagingStudyView,
    FhirOrganizationView,
    FhirPractitionerView,
    FhirServiceRequestView,
)
from apps.api.views.on_call import CoverageView, OnDutyView
from apps.api.views.provider import ProviderQueueViewSet
from apps.api.views.rest import EstablishmentViewSet, RequestViewSet, StudyViewSet, WorklistViewSet
from apps.api.views.webhooks import WebhookViewSet

__all__ = [
    "ApiView",
    "ApiViewSet",
    "CoverageView",
    "EstablishmentViewSet",
    "FhirDiagnosticReportView",
    "FhirImagingStudyView",
    "FhirOrganizationView",
    "FhirPractitionerView",
    "FhirServiceRequestView",
    "OnDutyView",
    "ProviderQueueViewSet",
    "RequestViewSet",
    "StudyViewSet",
    "WebhookViewSet",
    "WorklistViewSet",
]
