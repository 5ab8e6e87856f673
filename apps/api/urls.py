from django.urls import include, path
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


v1 = [
    path("", include(router.urls)),
    path("on-call/", views.OnDutyView.as_view(), name="on-call"),
    path("on-call/coverage/", views.CoverageView.as_view(), name="coverage"),
    path("fhir/ServiceRequest/<str:resource_id>", views.FhirServiceRequestView.as_view(), name="fhir-servicerequest"),
    path("fhir/ImagingStudy/<str:resource_id>", views.FhirImagingStudyView.as_view(), name="fhir-imagingstudy"),
    path("fhir/DiagnosticReport/<str:resource_id>", views.FhirDiagnosticReportView.as_view(),
         name="fhir-diagnosticreport"),
    path("fhir/Organization/<str:resource_id>", views.FhirOrganizationView.as_view(), name="fhir-organization"),
    path("fhir/Practitioner/<str:resource_id>", views.FhirPractitionerView.as_view(), name="fhir-practitioner"),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
]
