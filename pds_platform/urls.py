from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from apps.core import views as core_views
from apps.worklist import ohif_release
from pds_platform import health

admin.site.site_header = _("PDS Platform – regional administration")
admin.site.site_title = _("PDS Platform")
admin.site.index_title = _("Regional teleradiology mesh")

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("", core_views.home, name="home"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("apps.accounts.urls")),
    path("admin/", admin.site.urls),
    path("worklist/", include("apps.worklist.urls")),
    path("dashboard/", include("apps.dashboards.urls")),
    path("rosters/", include("apps.rosters.urls")),
    path("routing/", include("apps.routing.urls")),
    path("studies/", include("apps.studies.urls")),
    path("traceability/", include("apps.traceability.urls")),
    path("api/", include("apps.api.urls")),
    path("dicomweb/", include("apps.api.dicomweb_urls")),
    path(ohif_release.PREFIX.strip("/") + "/", include("apps.worklist.ohif_urls")),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

# Under /api/ these answer problem documents (application/problem+json), elsewhere Django's pages. Django
# uses them with DEBUG off (production, the tests); with DEBUG on it shows its technical pages instead.
handler400 = core_views.error_400
handler403 = core_views.error_403
handler404 = core_views.error_404
handler500 = core_views.error_500
