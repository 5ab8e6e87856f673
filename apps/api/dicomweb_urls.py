"""DICOMweb routes (PS3.18), mounted at /dicomweb/ (pds_platform/urls.py)."""

from django.urls import path

from apps.api.views import dicomweb as v

app_name = "dicomweb"

STUDY = "studies/<str:study_uid>"
SERIES = f"{STUDY}/series/<str:series_uid>"
INSTANCE = f"{SERIES}/instances/<str:instance_uid>"

urlpatterns = [
    path("studies", v.SearchStudies.as_view(), name="studies"),
    path(f"{STUDY}/series", v.SearchSeries.as_view(), name="study-series"),
    path(f"{STUDY}/instances", v.SearchInstances.as_view(), name="study-instances"),
    path(f"{SERIES}/instances", v.SearchInstances.as_view(), name="series-instances"),
    path(STUDY, v.Retrieve.as_view(), name="study"),
    path(f"{STUDY}/metadata", v.Metadata.as_view(), name="study-metadata"),
    path(SERIES, v.Retrieve.as_view(), name="series"),
    path(f"{SERIES}/metadata", v.Metadata.as_view(), name="series-metadata"),
    path(INSTANCE, v.Retrieve.as_view(), name="instance"),
    path(f"{INSTANCE}/metadata", v.Metadata.as_view(), name="instance-metadata"),
    path(f"{INSTANCE}/frames/<str:frames>", v.Frames.as_view(), name="frames"),
    path(f"{INSTANCE}/rendered", v.Rendered.as_view(), name="rendered"),
]
