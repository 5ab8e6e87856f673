from django.urls import path

from apps.worklist import ohif, viewer, views
from apps.worklist.priors import views as priors

app_name = "worklist"
urlpatterns = [
    path("", views.worklist, name="worklist"),
    path("rows", views.worklist_rows, name="worklist_rows"),
    path("site/", views.site_requests, name="site_requests"),
    path("site/rows", views.site_requests_rows, name="site_requests_rows"),
    path("site/matching/", views.matching, name="matching"),
    path("request/new/", views.request_new, name="request_new"),
    path("c/<uuid:public_id>/", views.case_detail, name="case"),
    path("c/<uuid:public_id>/live", views.case_live, name="case_live"),
    path("c/<uuid:public_id>/priors", priors.case_priors, name="case_priors"),
    path("c/<uuid:public_id>/report.pdf", views.case_report_pdf, name="report_pdf"),
    path("c/<uuid:public_id>/viewer/", viewer.viewer, name="viewer"),
    path("c/<uuid:public_id>/ohif/", ohif.case_ohif, name="ohif"),
    path("c/<uuid:public_id>/instances/<int:instance_id>.png", viewer.slice_png, name="slice"),
    path("c/<uuid:public_id>/do/<slug:name>", views.case_action, name="action"),
]
