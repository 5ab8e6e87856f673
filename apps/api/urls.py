from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from apps.api import views

app_name = "api"

router = SimpleRouter()
router.register("establishments", views.EstablishmentViewSet, basename="establishment")
router.register("requests", views.RequestViewSet, basename="request")
router.register("studies", views.StudyViewSet, basename="study")
router.register("worklist", views.WorklistViewSet, basename="worklist")
router.register("webhooks", views.WebhookViewSet, basename="webhook")
router.register("provider-queue", views.ProviderQueueViewSet, basename="provider-queue")



class FhirIdConverter:
    """A FHIR resource id (FHIR R4 "id": 1 to 64 of A-Z a-z 0-9 - .); any other path is a plain 404."""

    regex = "[A-Za-z0-9.-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: object) -> str:
        return str(value)


register_converter(FhirIdConverter, "fhir_id")

v1 = [
    path("", include(router.urls)),
    path("on-call/", views.OnDutyView.as_view(), name="on-call"),
    path("on-call/coverage/", views.CoverageView.as_view(), name="coverage"),
    path("fhir/ServiceRequest/<fhir_id:resource_id>", views.FhirServiceRequestView.as_view(),
         name="fhir-servicerequest"),
    path("fhir/ImagingStudy/<fhir_id:resource_id>", views.FhirImagingStudyView.as_view(), name="fhir-imagingstudy"),
    path("fhir/DiagnosticReport/<fhir_id:resource_id>", views.FhirDiagnosticReportView.as_view(),
         name="fhir-diagnosticreport"),
    path("fhir/Organization/<fhir_id:resource_id>", views.FhirOrganizationView.as_view(), name="fhir-organization"),
    path("fhir/Practitioner/<fhir_id:resource_id>", views.FhirPractitionerView.as_view(), name="fhir-practitioner"),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
]
