from django.urls import path

from apps.dashboards import views

app_name = "dashboards"
urlpatterns = [
    path("", views.dashboard, name="home"),
    path("export/<slug:name>.csv", views.table_csv, name="table_csv"),
]
