"""The OHIF viewer's files and client-side routes, mounted at apps.worklist.ohif_release.PREFIX."""

from django.urls import path

from apps.worklist import ohif

app_name = "ohif"
urlpatterns = [
    path("", ohif.ohif_app, name="app"),
    path("<path:path>", ohif.ohif_app, name="file"),
]
