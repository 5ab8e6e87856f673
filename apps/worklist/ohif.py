"""The OHIF viewer served by the platform under /ohif/: the pinned prebuilt release, our app-config, our links.

Invariants:
- Served by Django (not WhiteNoise, which answers before authentication): the second-factor middleware and the
  permission matrix (``ohif:*``, image readers) apply to every file. The files are the viewer's code, not patient
  data; the images come through /dicomweb/, which checks the case-visibility rule and audits each study.
- Nothing from a CDN: the release is installed in ``settings.PDS_OHIF_ROOT`` by ``scripts/install_ohif.py``;
  when it is missing, :func:`ohif_installed` is False and the case page offers the server-rendered viewer.
- The index page is rewritten when served: its inline scripts (refused by our Content-Security-Policy) are
  dropped, ``window.PUBLIC_URL`` is set by our ``app-config.js``, absolute links get the prefix.
"""

from __future__ import annotations

import json
import mimetypes
import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache

from apps.accounts.decorators import AuthenticatedHttpRequest, clinical_login_required
from apps.audit.services import audit_read
from apps.worklist import ohif_release as release
from apps.worklist import services
from apps.worklist.priors.selectors import prior_study_uids
from apps.worklist.views import case_or_404

# webpack's content hash in a file name (``app.bundle.0f6159c501addfe9.js``, ``34b1e6b1deb5828e.wasm``): such a
# file never changes under its name and is cached for a year.
_HASHED = re.compile(r"(^|\.)[0-9a-f]{16}\.(js|wasm|css|woff2?|ttf)$")
# The other files of the pinned release (its polyfills loaded by blocking <script> tags, chunk style sheets, fonts,
# icons) change only with the release: cached for a day instead of revalidated through the login on every opening
# of the viewer. The index page and app-config.js (ours) are revalidated every time.
_RELEASE_FILE_MAX_AGE = 86400
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>.*?</script>", re.DOTALL)
_SERVICE_WORKER = re.compile(r'<script[^>]*init-service-worker\.js"[^>]*></script>')
# The web-app manifest is fetched without the session cookie: it would get the login page. Not an installable app.
_MANIFEST = re.compile(r'<link rel="manifest"[^>]*>')


def ohif_folder() -> Path:
    return Path(settings.PDS_OHIF_ROOT) / release.VERSION


def ohif_installed() -> bool:
    return release.installed(settings.PDS_OHIF_ROOT)


def ohif_status() -> str:
    """One line for the run_platform banner."""
    if ohif_installed():
        return f"OHIF viewer {release.VERSION} at {release.PREFIX} (from the cases' pages)"
    return ("OHIF viewer not installed (npm or the registry was unavailable at `make install`): "
            "the server-rendered viewer is used")


# OHIF's own "compare two studies" hanging protocol (default extension): the first study (the case's) beside the
# second (its most recent prior), 2x1 or 2x2 viewports. Not in the default mode's list: named in the URL.
COMPARE_PROTOCOL = "@ohif/hpCompare"


def ohif_study_url(study_uids: list[str], *, compare: bool = False) -> str:
    query = {"StudyInstanceUIDs": ",".join(study_uids)}
    if compare and len(study_uids) > 1:
        query["hangingProtocolId"] = COMPARE_PROTOCOL
    return f"{release.PREFIX}viewer?" + urlencode(query)


@lru_cache(maxsize=4)
def _index_html(folder: str) -> bytes:
    html = (Path(folder) / "index.html").read_text(encoding="utf-8")
    html = _MANIFEST.sub("", _SERVICE_WORKER.sub("", html))
    html = _INLINE_SCRIPT.sub("", html)
    # Absolute links of the build ("/assets/…", "/app.bundle…") live under our prefix.
    html = re.sub(r'(href|src)="/(?!/)', rf'\1="{release.PREFIX}', html)
    return html.encode()


def app_config(dicomweb_root: str) -> str:
    """window.config of OHIF: one DICOMweb data source, ours, reached with the session cookie (same origin)."""
    source = {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
        "sourceName": "pds",
        "configuration": {
            "friendlyName": "PDS Platform", "name": "pds",
            "qidoSupportsIncludeField": False, "imageRendering": "wadors", "thumbnailRendering": "wadors",
            "enableStudyLazyLoad": True, "supportsFuzzyMatching": False, "supportsWildcard": True,
            "staticWado": False, "singlepart": False, "bulkDataURI": {"enabled": False},
            "omitQuotationForMultipartRequest": True, "dicomUploadEnabled": False,
        },
    }
    config = {
        "routerBasename": release.PREFIX.rstrip("/"), "extensions": [], "modes": [], "customizationService": {},
        # Our worklist is the study list: OHIF opens only the studies a case page links to.
        "showStudyList": False, "investigationalUseDialog": {"option": "never"},
        "maxNumberOfWebWorkers": 3, "showWarningMessageForCrossOrigin": False, "showCPUFallbackMessage": True,
        "showLoadingIndicator": True, "strictZSpacingForVolumeViewport": True,
        "maxNumRequests": {"interaction": 100, "thumbnail": 10, "prefetch": 10},
        "showErrorDetails": "production", "defaultDataSourceName": "pds", "dataSources": [source],
    }
    roots = ", ".join(f"{k}: origin + {json.dumps(dicomweb_root)}" for k in ("wadoUriRoot", "qidoRoot", "wadoRoot"))
    return (
        "// Generated by the PDS Platform (apps.worklist.ohif): our DICOMweb, same origin, session cookie.\n"
        f"window.PUBLIC_URL = {json.dumps(release.PREFIX)};\n"
        "function browserImportFunction(n) { return import(n); }\n"
        "(function () {\n"
        "  var origin = window.location.origin;\n"
        f"  window.config = {json.dumps(config, indent=1)};\n"
        f"  Object.assign(window.config.dataSources[0].configuration, {{{roots}}});\n"
        "})();\n"
        + _FOLLOW_JS.replace("__VIEWER__", json.dumps(release.PREFIX + "viewer"))
    )


# The second window follows the case: a case page (static/worklist/app.js) that finds the viewer already open in
# the window named pds-ohif posts it the next case's viewer URL, and OHIF moves there with its own router (its
# ModeRoute reloads the data source and the hanging protocol on a change of location) instead of being reloaded:
# its code, workers, decoders and WebGL context stay warm, and only the study's data is fetched. Messages from
# another origin, or naming another page than the viewer's, are ignored.
_FOLLOW_JS = """(function () {
  var viewer = __VIEWER__;
  window.pdsViewerFollows = true;
  window.addEventListener("message", function (event) {
    if (event.origin !== window.location.origin || !event.data || typeof event.data.pdsViewer !== "string") return;
    var url = new URL(event.data.pdsViewer, window.location.origin);
    if (url.origin !== window.location.origin || url.pathname !== viewer) return;
    var target = url.pathname + url.search;
    if (target === window.location.pathname + window.location.search) return;
    // The entry react-router would have pushed (its state carries an index), then the event its history listens to.
    var state = window.history.state, idx = state && typeof state.idx === "number" ? state.idx + 1 : 0;
    window.history.pushState({ usr: null, key: Math.random().toString(36).slice(2, 10), idx: idx }, "", target);
    window.dispatchEvent(new PopStateEvent("popstate", { state: window.history.state }));
  });
})();
"""


@clinical_login_required
def ohif_app(request: AuthenticatedHttpRequest, path: str = "") -> HttpResponseBase:
    """Every URL under the prefix: our app-config.js, a file of the release, or the index page (the viewer's
    client-side routes, e.g. ``viewer?StudyInstanceUIDs=…``)."""
    if not ohif_installed():
        raise Http404
    if path == "app-config.js":
        response = HttpResponse(app_config(reverse("dicomweb:studies").rsplit("/", 1)[0]),
                                content_type="text/javascript; charset=utf-8")
        response["Cache-Control"] = "private, no-cache"
        return response
    folder = ohif_folder().resolve()
    target = (folder / path).resolve() if path else folder
    if target != folder and folder in target.parents and target.is_file() and target.name != release.MARKER:
        gz = release.gzipped(target) if "gzip" in request.META.get("HTTP_ACCEPT_ENCODING", "") else None
        if gz is not None:  # the same file, compressed (the browser decodes it; its cache keeps the 17 MB bundle)
            file = FileResponse(gz.open("rb"), content_type=mimetypes.guess_type(target.name)[0]
                                or "application/octet-stream")
            file["Content-Encoding"] = "gzip"
        else:
            file = FileResponse(target.open("rb"))
        patch_vary_headers(file, ("Accept-Encoding",))
        file["Cache-Control"] = ("private, max-age=31536000, immutable" if _HASHED.search(target.name)
                                 else "private, no-cache" if target.suffix == ".html"
                                 else f"private, max-age={_RELEASE_FILE_MAX_AGE}")
        return file
    if "." in path.rsplit("/", 1)[-1]:
        raise Http404  # a missing file, not a route of the viewer
    response = HttpResponse(_index_html(str(folder)), content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "private, no-cache"
    return response


@clinical_login_required
@never_cache
def case_ohif(request: AuthenticatedHttpRequest, public_id: Any) -> HttpResponse:
    """The case's studies in OHIF (the server-rendered viewer when OHIF is not installed), audited as the
    viewer is; asked for JSON, the viewer's URL instead of the redirect (an open viewer window moves there)."""
    case = case_or_404(request, public_id)
    if not ohif_installed():
        return redirect("worklist:viewer", case.public_id)
    uids = list(case.studies.order_by("study_datetime", "pk").values_list("study_uid", flat=True))
    priors = [u for u in prior_study_uids(case.pk) if u not in uids]  # opened beside the case's own study
    uids += priors
    audit_read(case, details={"view": "ohif", "studies": uids})
    if request.user.role == "radiologist":
        services.case_open(case=case, user=request.user)
    url = ohif_study_url(uids, compare=bool(priors)) if uids else reverse("worklist:case", args=[case.public_id])
    if request.headers.get("Accept", "").startswith("application/json"):
        # The case page asks where the viewer window should go, to move an open OHIF there (see _FOLLOW_JS).
        return JsonResponse({"url": url, "viewer": bool(uids)})
    return redirect(url)
