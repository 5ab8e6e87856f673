from django.urls import path

from apps.traceability import views

app_name = "traceability"
urlpatterns = [
    path("cases/<uuid:public_id>/record/", views.record_detail, name="record"),
    path("cases/<uuid:public_id>/record.<str:fmt>", views.record_download, name="record_download"),
]
