"""DICOMweb under /dicomweb/: QIDO-RS searches, WADO-RS retrieval (instances, metadata, frames, rendered), STOW-RS.

Same authentication as the API (an API key, or a browser session that passed the second factor), the same
permission matrix and the same case-visibility rule (its decision kept ``VISIBLE_FOR`` seconds per caller and study:
a series is a few hundred frame requests; the series' file paths as long); a study outside the caller's perimeter
is "not found" and the refusal is audited. Each study opened (retrieved, its metadata, its frames or a rendered
image) is one audit entry per caller and study every ``AUDIT_EVERY`` seconds, not one per frame; each search one
entry listing the studies returned."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.accounts.authorization import object_refused
from apps.api import dicomweb as dw
from apps.api.selectors import studies_visible_to
from apps.api.throttles import DicomWebRateThrottle
from apps.api.views.base import ApiView, audit_list
from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, NotFoundError
from apps.studies.models import Instance, Series, Study
from apps.worklist.dicom_json import metadata_document

DICOM_JSON = "application/dicom+json"
AUDIT_EVERY = 600  # seconds
VISIBLE_FOR = 30  # seconds


@extend_schema(exclude=True)  # DICOMweb is specified by PS3.18, not by this API's OpenAPI document
class DicomWebView(APIView):
    # As ApiView, without its query-string contract: QIDO-RS keys are checked by apps.api.dicomweb.matching.
    authentication_classes = ApiView.authentication_classes
    permission_classes = ApiView.permission_classes
    throttle_classes = [DicomWebRateThrottle]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # DICOMweb media types (multipart/related, application/dicom+json, image/png) are answered by the views
        # themselves; DRF's renderers only write the problem documents.
        return super().perform_content_negotiation(request, force=True)

    def base(self) -> str:
        return self.request.build_absolute_uri("/dicomweb").rstrip("/")

    def who(self) -> str:
        user = self.request.user
        return f"key{user.key_id}" if getattr(user, "key_id", None) else f"user{getattr(user, 'pk', '')}"

    def study(self, study_uid: str) -> Study:
        """The study if the caller may see it. A viewer loading a series asks for each frame: the decision is kept
        ``VISIBLE_FOR`` seconds per caller and study in this process (building the case-visibility query costs
        more than serving a compressed frame); a refusal is never kept, and a reader whose case was taken away
        loses its images within that time."""
        valid = bool(dw.UID_RE.match(study_uid)) and len(study_uid) <= 64
        key = f"dicomweb-visible:{self.who()}:{study_uid}" if valid else ""
        found = cache.get(key) if valid else None
        if found is None and valid:
            found = studies_visible_to(self.request.user).filter(study_uid=study_uid).first()
            if found is not None:
                cache.set(key, found, VISIBLE_FOR)
        if found is None:
            object_refused(self.request, model=Study, lookup={"study_uid": study_uid[:64]}, action="dicomweb")
            raise NotFoundError("No such study.")
        return found

    def opened(self, study: Study, what: str) -> None:
        key = f"dicomweb-audit:{self.who()}:{study.pk}"
        if cache.add(key, 1, AUDIT_EVERY):
            audit_record(action="read", obj=study, patient_data=True, establishment_id=study.site_id,
                         details={"view": "dicomweb", "what": what})

    def instance_rows(self, study: Study, series_uid: str = "", instance_uid: str = "") -> QuerySet[Instance]:
        qs = Instance.objects.filter(study=study).order_by("series__number", "series_id", "instance_number", "pk")
        if series_uid:
            qs = qs.filter(series__series_uid=series_uid)
        if instance_uid:
            qs = qs.filter(sop_instance_uid=instance_uid)
        return qs

    def instance_path(self, study: Study, series_uid: str, instance_uid: str) -> str:
        """The stored path of an instance of a visible study. A viewer asks for each slice's frame in turn: the
        paths of the whole series are read once and kept ``VISIBLE_FOR`` seconds in this process (a row's path
        never changes; the study's visibility is decided before, on every request)."""
        if not (dw.UID_RE.match(series_uid) and len(series_uid) <= 64):
            raise NotFoundError("No such series or instance in this study.")
        key = f"dicomweb-paths:{study.pk}:{series_uid}"
        paths = cache.get(key)
        if paths is None or instance_uid not in paths:  # not read yet, or an image received since
            paths = dict(Instance.objects.filter(study=study, series__series_uid=series_uid)
                         .values_list("sop_instance_uid", "path"))
            cache.set(key, paths, VISIBLE_FOR)
        if instance_uid not in paths:
            raise NotFoundError("No such series or instance in this study.")
        return str(paths[instance_uid])

    def instances(self, study: Study, series_uid: str = "", instance_uid: str = "") -> list[Instance]:
        found = list(self.instance_rows(study, series_uid, instance_uid).select_related("study", "series"))
        if not found:
            raise NotFoundError("No such series or instance in this study.")
        return found


def dicom_json(items: list[dict[str, Any]]) -> JsonResponse:
    response = JsonResponse(items, safe=False, status=200 if items else 204)
    response["Content-Type"] = DICOM_JSON
    return response


# --- QIDO-RS ---------------------------------------------------------------------------------------------


def stow(view: DicomWebView, request: Request, study_uid: str = "") -> HttpResponse:
    """STOW-RS: each posted instance through the gateway's ingest service, for the key's own establishment."""
    from apps.api import stow as st

    if study_uid and not (dw.UID_RE.match(study_uid) and len(study_uid) <= 64):
        raise ApplicationError("The study of the request is not a valid UID.")
    site_id = getattr(request.user, "establishment_id", None)
    if site_id is None:  # the matrix lets read-write API keys only; a key always belongs to one establishment
        raise ApplicationError("Only an establishment's read-write API key may store.", code="forbidden",
                               status_code=403)
    limit = st.max_bytes()
    if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
        raise st.too_large(limit)
    mark = st.boundary_of(request.headers.get("Content-Type", ""))
    name = f"STOW{getattr(request.user, 'key_id', '')}"
    with st.body_on_disk(request.stream, limit=limit) as body:
        outcomes = [st.instance_store(data=body[start:end], content_type=ctype, site_id=site_id, sender_name=name,
                                      study_uid=study_uid) for ctype, start, end in st.part_spans(mark, body)]
    status, content = st.response_json(outcomes, base=view.base())
    response = JsonResponse(content, status=status)
    response["Content-Type"] = DICOM_JSON
    reasons = [f"{o.sop_instance_uid or '?'}: 0x{o.status:04X} {o.reason}" for o in outcomes if o.status][:20]
    if reasons:  # PS3.18 8.6.3: why, in Warning headers (ASCII)
        response["Warning"] = ", ".join(f'299 pds "{r[:200]}"'.encode("ascii", "replace").decode()
                                        for r in reasons)
    return response


class SearchStudies(DicomWebView):
    def post(self, request: Request) -> HttpResponse:
        return stow(self, request)

    def get(self, request: Request) -> HttpResponse:
        qs = (studies_visible_to(request.user).filter(dw.matching(request.query_params, "study", {"study": ""}))
              .order_by("-study_datetime", "pk"))
        found = dw.page(qs, dw.page_of(request.query_params))
        audit_list("study", [s.pk for s in found], view="dicomweb search")
        return dicom_json([dw.study_json(s, base=self.base()) for s in found])


class SearchSeries(DicomWebView):
    def get(self, request: Request, study_uid: str) -> HttpResponse:
        study = self.study(study_uid)
        qs = (Series.objects.filter(study=study).select_related("study")
              .filter(dw.matching(request.query_params, "series", {"study": "study__", "series": ""}))
              .order_by("number", "pk"))
        found = dw.page(qs, dw.page_of(request.query_params))
        audit_list("study", [study.pk] if found else [], view="dicomweb series search")
        return dicom_json([dw.series_json(s, base=self.base()) for s in found])


class SearchInstances(DicomWebView):
    def get(self, request: Request, study_uid: str, series_uid: str = "") -> HttpResponse:
        study = self.study(study_uid)
        qs = Instance.objects.filter(study=study).select_related("study", "series").filter(dw.matching(
            request.query_params, "instance", {"study": "study__", "series": "series__", "instance": ""}))
        if series_uid:
            qs = qs.filter(series__series_uid=series_uid)
        found = dw.page(qs.order_by("series__number", "instance_number", "pk"), dw.page_of(request.query_params))
        audit_list("study", [study.pk] if found else [], view="dicomweb instance search")
        return dicom_json([dw.instance_json(i, base=self.base()) for i in found])


# --- WADO-RS ---------------------------------------------------------------------------------------------


class Retrieve(DicomWebView):
    """A study, a series or an instance as multipart/related; type="application/dicom", streamed file by file;
    STOW-RS into a study (POST, the study route only: the matrix refuses it elsewhere)."""

    def post(self, request: Request, study_uid: str, series_uid: str = "", instance_uid: str = "") -> HttpResponse:
        return stow(self, request, study_uid)

    def get(self, request: Request, study_uid: str, series_uid: str = "",
            instance_uid: str = "") -> HttpResponseBase:
        from apps.worklist.imaging import instance_file

        syntax = dw.accepted_transfer_syntax(request.headers.get("Accept", ""), part_type="application/dicom")
        if syntax not in ("*", dw.EXPLICIT_LE):
            raise ApplicationError("This service returns instances as stored (transfer-syntax=*) or in Explicit VR "
                                   f"Little Endian ({dw.EXPLICIT_LE}).", code="not_acceptable", status_code=406)
        study = self.study(study_uid)
        # Only the files' paths are held (a few hundred bytes per instance); each file is read in chunks while the
        # response is sent: memory stays flat whatever the study's size (tests/api/test_dicomweb_streaming.py).
        paths = list(self.instance_rows(study, series_uid, instance_uid).values_list("path", flat=True))
        if not paths:
            raise NotFoundError("No such series or instance in this study.")
        self.opened(study, "retrieve")
        mark = dw.boundary()
        reader = dw.file_chunks if syntax == "*" else dw.explicit_le_file
        ts = f"; transfer-syntax={syntax}" if syntax != "*" else ""
        parts = ((f"application/dicom{ts}", reader(instance_file(path))) for path in paths)
        response = StreamingHttpResponse(dw.multipart(parts, mark))
        response["Content-Type"] = f'multipart/related; type="application/dicom"; boundary={mark}'
        return response


class Metadata(DicomWebView):
    def get(self, request: Request, study_uid: str, series_uid: str = "", instance_uid: str = "") -> HttpResponse:
        study = self.study(study_uid)
        found = self.instances(study, series_uid, instance_uid)
        self.opened(study, "metadata")
        try:
            return HttpResponse(metadata_document(found, base=self.base()), content_type=DICOM_JSON)
        except FileNotFoundError as exc:
            raise NotFoundError("An instance of this study is missing from the storage.") from exc


class Frames(DicomWebView):
    def get(self, request: Request, study_uid: str, series_uid: str, instance_uid: str,
            frames: str) -> HttpResponse:
        from apps.worklist.imaging import instance_file

        numbers = [int(n) for n in frames.split(",") if n.isdigit()]
        if not numbers or len(numbers) != len(frames.split(",")):
            raise ApplicationError("Frames are numbers from 1, separated by commas.")
        syntax = dw.accepted_transfer_syntax(request.headers.get("Accept", ""),
                                             part_type="application/octet-stream")
        if syntax not in ("*", dw.EXPLICIT_LE):
            raise ApplicationError("Frames are served as stored (transfer-syntax=*) or uncompressed "
                                   f"(application/octet-stream, transfer-syntax={dw.EXPLICIT_LE}).",
                                   code="not_acceptable", status_code=406)
        study = self.study(study_uid)
        try:
            content, data = dw.frames_of(instance_file(self.instance_path(study, series_uid, instance_uid)),
                                         numbers, as_stored=syntax == "*")
        except IndexError as exc:
            raise NotFoundError(f"No such frame: this instance has {exc}.") from exc
        self.opened(study, "frames")
        mark = dw.boundary()
        response = HttpResponse(b"".join(dw.multipart(((content, [d]) for d in data), mark)))
        # Compressed: the part's type with its syntax in the root type too, as Orthanc answers.
        root = content if not content.startswith("application/octet-stream") else "application/octet-stream"
        response["Content-Type"] = f'multipart/related; type="{root}"; boundary={mark}'
        return response


class Rendered(DicomWebView):
    def get(self, request: Request, study_uid: str, series_uid: str, instance_uid: str) -> HttpResponse:
        from apps.worklist.imaging import instance_file, render_png

        accept = request.headers.get("Accept", "")
        if accept and not any(t in accept for t in ("image/png", "image/*", "*/*")):
            raise ApplicationError("Rendered images are image/png.", code="not_acceptable", status_code=406)
        study = self.study(study_uid)
        inst = self.instances(study, series_uid, instance_uid)[0]
        self.opened(study, "rendered")
        return HttpResponse(render_png(instance_file(inst.path)), content_type="image/png")
