"""Issue 14, findings 9 (bad input gives 500s) and 11 (the API breaks its own contract): one regression test per
failure, each failing on the code before the fix. The exhaustive search is schemathesis's
(tests/integration/test_schemathesis_api.py); these pin each finding, fast, on both databases."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from io import BytesIO
from typing import Any

import pytest
from django.test import RequestFactory
from django.urls import resolve
from django.utils import timezone
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from rest_framework.request import Request

from apps.studies.models import Study
from tests.api.conftest import REQUEST_BODY, ApiWorld, request_create
from tests.factories.dicom import make_instance

PROBLEM = "application/problem+json"
LISTS = ["/api/v1/requests/", "/api/v1/studies/", "/api/v1/worklist/", "/api/v1/establishments/",
         "/api/v1/webhooks/"]


def assert_problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.content[:500])
    assert resp["Content-Type"].startswith(PROBLEM), resp["Content-Type"]
    body = json.loads(resp.content)
    assert body["status"] == status and body["title"] and "detail" in body
    return body


def study_receive(site_id: int, *, study_date: str, study_time: str = "031500", accession: str = "STUDY-1") -> Study:
    """Through the DICOM gateway's parsing (dicom_gateway.metadata) and storage service (apps.studies)."""
    from apps.studies import services
    from dicom_gateway.metadata import instance_meta_parse

    ds = make_instance(study_uid=generate_uid(), series_uid=generate_uid(), accession=accession)
    ds.StudyDate, ds.StudyTime = study_date, study_time
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    meta = instance_meta_parse(buffer.getvalue(), transfer_syntax_uid=ExplicitVRLittleEndian)
    now = timezone.now()
    ref = services.study_series_ensure(site_id=site_id, calling_ae="ALPHA_CT", meta=meta, now=now)
    services.instance_record(ref=ref, meta=meta, rel_path=meta.relative_path(), size=10, sha256="0" * 64, now=now)
    return Study.objects.get(pk=ref.study_id)


@pytest.fixture
def full_world(world: ApiWorld) -> ApiWorld:
    """Something in every list, so that a page is really fetched from the database."""
    from apps.api.services import webhook_subscription_create

    request_create(world)
    study_receive(world.site_a.pk, study_date=timezone.localdate().strftime("%Y%m%d"))
    webhook_subscription_create(api_key=world.keys["a_rw"][0], url="https://ris.example.org/pds",
                                events=["request.created"])
    return world


def schema(world: ApiWorld) -> dict[str, Any]:
    resp = world.client("a_rw").get("/api/schema/?format=json")
    assert resp.status_code == 200
    return json.loads(resp.content)


# --- Finding 9: bad input gives 500s --------------------------------------------------------------------

@pytest.mark.parametrize("limit", ["99999999999999999999", "4493207920571879784448", "1000000", "201"])
@pytest.mark.parametrize("path", LISTS)
def test_a_limit_above_the_cap_is_a_400_problem_on_every_list(full_world: ApiWorld, path: str, limit: str) -> None:
    body = assert_problem(full_world.client("a_rw").get(path, {"limit": limit}), 400)
    assert set(body["errors"]) == {"limit"}


def test_the_page_size_is_capped_at_200_and_200_is_served(full_world: ApiWorld) -> None:
    page = full_world.client("a_rw").get("/api/v1/requests/", {"limit": "200"})
    assert page.status_code == 200 and page.json()["count"] == 1


def test_deeply_nested_json_is_a_400_problem_not_a_recursion_error(world: ApiWorld) -> None:
    for body in ("[" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000):
        problem = assert_problem(world.client("a_rw").post("/api/v1/requests/", body,
                                                           content_type="application/json"), 400)
        assert "nested deeper" in problem["detail"]


def test_a_20_mb_body_is_a_413_problem_not_an_html_page(world: ApiWorld) -> None:
    body = json.dumps({**REQUEST_BODY, "clinical_context": "x" * 20_000_000})
    assert_problem(world.client("a_rw").post("/api/v1/requests/", body, content_type="application/json"), 413)


def test_a_body_that_is_not_json_is_a_415_problem(world: ApiWorld) -> None:
    assert_problem(world.client("a_rw").post("/api/v1/requests/", "patient_birth_name=X",
                                             content_type="application/x-www-form-urlencoded"), 415)


def test_a_server_error_under_api_is_a_problem_document_and_elsewhere_a_page() -> None:
    from apps.core.views import error_500

    api = error_500(RequestFactory().get("/api/v1/requests/"))
    assert api.status_code == 500 and api["Content-Type"] == PROBLEM and json.loads(api.content)["status"] == 500
    page = error_500(RequestFactory().get("/worklist/"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


# --- Finding 11: the API breaks its own contract ----------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/api/v1/requests/%C2%84/", "/api/v1/requests/not-a-uuid/events/", "/api/v1/requests/x/cancel/",
    "/api/v1/requests/x/assignment/", "/api/v1/requests/x/report/", "/api/v1/requests/x/report/pdf/",
    "/api/v1/requests/x/report/addenda/", "/api/v1/requests/x/tele-act/", "/api/v1/studies/1.5/",
    "/api/v1/establishments/-1/", "/api/v1/webhooks/%00/", "/api/v1/webhooks/x/deliveries/",
    "/api/v1/fhir/ImagingStudy/%00", "/api/v1/fhir/ServiceRequest/a%20b", "/api/v1/no-such-thing/",
])
def test_a_404_under_api_is_a_problem_document_whatever_raised_it(world: ApiWorld, path: str) -> None:
    client = world.client("a_rw")
    resp = client.post(path) if path.endswith("/cancel/") else client.get(path)
    assert_problem(resp, 404)


def test_a_404_outside_the_api_stays_a_page(client: Any) -> None:
    resp = client.get("/no-such-page/")
    assert resp.status_code in (302, 404) and not resp["Content-Type"].startswith(PROBLEM)


@pytest.mark.parametrize("query", [
    {"offset": "null"}, {"offset": "-1"}, {"offset": "1.0"}, {"limit": "0"}, {"limit": "abc"}, {"limit": ""},
    {"urgency": ""}, {"urgency": "AAA"}, {"status": "nope"}, {"modality": "ct"}, {"modality": "PET"},
    {"requested_after": "2024-01-01"}, {"requested_after": "2024-01-01T10:00:00"},
    {"requested_after": "1999-12-31T23:00:00Z"}, {"accession_number": "A\x00B"}, {"stauts": "reported"},
])
def test_an_invalid_or_unknown_query_value_is_refused_not_ignored(full_world: ApiWorld,
                                                                 query: dict[str, str]) -> None:
    body = assert_problem(full_world.client("a_rw").get("/api/v1/requests/", query), 400)
    assert set(body["errors"]) == set(query)


@pytest.mark.parametrize("query", [{"matched": "garbage"}, {"matched": ""}, {"matched": "1"},
                                   {"status": "sent"}, {"limit": "5", "offset": "null"}])
def test_studies_filters_refuse_what_they_used_to_ignore(full_world: ApiWorld, query: dict[str, str]) -> None:
    assert_problem(full_world.client("a_rw").get("/api/v1/studies/", query), 400)


def test_a_parameter_given_twice_is_refused_unless_it_is_a_list(full_world: ApiWorld) -> None:
    client = full_world.client("a_rw")
    assert_problem(client.get("/api/v1/requests/?offset=null&offset=null"), 400)
    assert_problem(client.get("/api/v1/requests/?limit=5&limit=6"), 400)
    assert client.get("/api/v1/requests/?status=accepted&status=awaiting_validation").status_code == 200


def test_filters_work_with_valid_values(full_world: ApiWorld) -> None:
    client = full_world.client("a_rw")
    assert client.get("/api/v1/studies/", {"matched": "false"}).json()["count"] == 1
    assert client.get("/api/v1/studies/", {"matched": "true"}).json()["count"] == 0
    assert client.get("/api/v1/requests/", {"modality": "CT", "urgency": "vital",
                                            "requested_after": "2020-01-01T00:00:00+01:00",
                                            "requested_before": "2100-01-01T00:00:00-19:00"}).json()["count"] == 1


def test_every_operation_documents_its_error_statuses_as_problem_documents(world: ApiWorld) -> None:
    doc = schema(world)
    problem_ref = "#/components/schemas/Problem"
    for path, item in doc["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            expected = {"400", "401", "403", "406", "429"}
            if "{" in path:
                expected.add("404")
            if "requestBody" in op:
                expected |= {"413", "415"}
            missing = expected - set(op["responses"])
            assert not missing, f"{method.upper()} {path} does not document {sorted(missing)}"
            for code in expected:
                content = op["responses"][code]["content"]
                assert content[PROBLEM]["schema"]["$ref"] == problem_ref, (method, path, code)


def _view_of(path: str, method: str) -> Any:
    """The API view instance that would serve ``method path``, as DRF sets it up."""
    concrete = re.sub(r"\{public_id\}", str(uuid.uuid4()), path)
    concrete = re.sub(r"\{[a-z_]+\}", "1", concrete)
    match = resolve(concrete)
    func = match.func
    view = func.cls(**func.initkwargs)
    request = Request(RequestFactory().generic(method.upper(), concrete))
    view.request, view.args, view.kwargs, view.format_kwarg = request, (), match.kwargs, None
    actions = getattr(func, "actions", None)
    if actions:
        view.action_map = actions
        view.action = actions.get(method.lower())
    return view


def test_each_operation_accepts_exactly_the_query_parameters_its_schema_documents(world: ApiWorld) -> None:
    doc = schema(world)
    checked = 0
    for path, item in doc["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, op in item.items():
            documented = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            accepted, repeatable = _view_of(path, method).accepted_query()
            assert accepted == documented, f"{method.upper()} {path}"
            arrays = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"
                      and p["schema"].get("type") == "array"}
            assert repeatable == arrays, f"{method.upper()} {path}"
            checked += 1
    assert checked >= 27


def test_list_pagination_is_documented_with_its_bounds(world: ApiWorld) -> None:
    params = {p["name"]: p["schema"] for p in schema(world)["paths"]["/api/v1/requests/"]["get"]["parameters"]}
    assert params["limit"]["minimum"] == 1 and params["limit"]["maximum"] == 200
    assert params["offset"]["minimum"] == 0


def test_a_study_with_an_absurd_study_date_is_kept_without_a_date(world: ApiWorld) -> None:
    # StudyDate 00010101 used to be stored (read back in Paris mean time, +00:09:21); at midnight it did not
    # even convert to UTC. The image is kept either way, its study has no date.
    late = study_receive(world.site_a.pk, study_date="00010101", study_time="031500")
    midnight = study_receive(world.site_a.pk, study_date="00010101", study_time="000000")
    future = study_receive(world.site_a.pk, study_date="21000101")
    for study in (late, midnight, future):
        assert study.study_datetime is None and study.num_instances == 1
        resp = world.client("a_rw").get(f"/api/v1/studies/{study.pk}/")
        assert resp.status_code == 200 and resp.json()["study_datetime"] is None


RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def test_times_are_rfc3339_in_utc(world: ApiWorld) -> None:
    from apps.regions.calendar import PARIS

    study = study_receive(world.site_a.pk, study_date="19120315", study_time="031500")
    body = world.client("a_rw").get(f"/api/v1/studies/{study.pk}/").json()
    utc = dt.datetime(1912, 3, 15, 3, 15, tzinfo=PARIS).astimezone(dt.UTC)
    assert body["study_datetime"] == utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert RFC3339_UTC.match(body["first_received_at"])
    created = request_create(world)
    assert RFC3339_UTC.match(created["requested_at"])


def _pattern(doc: dict[str, Any], path: str, name: str) -> re.Pattern[str]:
    params = {p["name"]: p["schema"] for p in doc["paths"][path]["get"]["parameters"]}
    return re.compile(params[name]["pattern"])


@pytest.mark.parametrize("value", ["1999-12-31", "2000-01-01", "2026-03-02", "2100-12-31", "2101-01-01",
                                   "0090-05-16", "3548-05-05", "2026-02-30", "20260302"])
def test_coverage_accepts_exactly_the_weeks_its_schema_allows(full_world: ApiWorld, value: str) -> None:
    doc = schema(full_world)
    documented = bool(_pattern(doc, "/api/v1/on-call/coverage/", "week_start").match(value))
    try:
        documented = documented and dt.date.fromisoformat(value) is not None
    except ValueError:
        documented = False
    resp = full_world.client("a_rw").get("/api/v1/on-call/coverage/", {"week_start": value})
    assert resp.status_code in (200, 400) and (resp.status_code == 200) == documented, (value, resp.content)


@pytest.fixture
def routing_cache_cleared() -> Any:
    """apps.routing.selectors keeps calendars per region id for 30 s; on SQLite the ids of this test's region
    come back in the next test, which must not route with this one's calendar."""
    from apps.routing import selectors

    selectors._cache.clear()
    yield
    selectors._cache.clear()


@pytest.mark.usefixtures("routing_cache_cleared")
@pytest.mark.parametrize("value", ["2000-01-01T00:00:00+14:00", "2100-12-31T23:59:59-12:00", "3548-05-05T22:47:10-12:04",
                                   "1999-12-31T23:59:59Z", "2026-03-02T10:00:00", "2026-03-02T10:00Z",
                                   "2026-03-02 10:00:00Z", "2026-03-02T10:00:00.123456789+01:00"])
def test_on_call_accepts_exactly_the_instants_its_schema_allows(full_world: ApiWorld, value: str) -> None:
    doc = schema(full_world)
    documented = bool(_pattern(doc, "/api/v1/on-call/", "at").match(value))
    resp = full_world.client("a_rw").get("/api/v1/on-call/", {"site": full_world.site_a.pk, "modality": "CT",
                                                               "at": value})
    assert resp.status_code in (200, 400, 503) and (resp.status_code != 400) == documented, (value, resp.content)


def test_modality_is_the_catalogue_in_the_schema_and_in_the_code(world: ApiWorld) -> None:
    from apps.regions.models import Modality

    doc = schema(world)
    body = doc["components"]["schemas"]["RequestInputRequest"]["properties"]["modality"]
    ref = body.get("$ref") or body.get("allOf", [{}])[0].get("$ref")
    enum = body.get("enum") or doc["components"]["schemas"][ref.rsplit("/", 1)[1]]["enum"]
    assert sorted(enum) == sorted(Modality.objects.values_list("code", flat=True))
    client = world.client("a_rw")
    for bad in ("ct", " CT", "PET", 42):
        resp = client.post("/api/v1/requests/", {**REQUEST_BODY, "modality": bad}, format="json")
        assert set(assert_problem(resp, 400)["errors"]) == {"modality"}
    for code in enum:
        assert client.post("/api/v1/requests/", {**REQUEST_BODY, "modality": code}, format="json").status_code == 201


@pytest.mark.parametrize("change", [
    {"patient_informed": "yes"}, {"exam": 42}, {"patient_birth_date": "20240101"},
    {"patient_birth_date": "2024-W01-1"}, {"patient_ins": "123"}, {"patient_birth_name": "   "},
    {"patient_birth_name": "A\x00"}, {"patient_birth_place": "12345\n"}, {"patient_INS": "255081416802538"},
])
def test_a_request_body_outside_the_schema_is_a_400(world: ApiWorld, change: dict[str, Any]) -> None:
    resp = world.client("a_rw").post("/api/v1/requests/", {**REQUEST_BODY, **change}, format="json")
    assert set(assert_problem(resp, 400)["errors"]) == set(change)


def test_a_valid_body_a_rule_refuses_is_a_422(world: ApiWorld) -> None:
    resp = world.client("a_rw").post("/api/v1/requests/", {**REQUEST_BODY, "patient_ins": "255081416802539"},
                                     format="json")
    assert set(assert_problem(resp, 422)["errors"]) == {"patient_ins"}
    # The INS's year and month of birth (55, 08) must be those of the date of birth (apps.worklist.identity).
    ok = world.client("a_rw").post("/api/v1/requests/", {**REQUEST_BODY, "patient_ins": "255081416802538",
                                                         "patient_birth_date": "1955-08-14"}, format="json")
    assert ok.status_code == 201 and ok.json()["patient"]["ins"] == "255081416802538"


@pytest.mark.parametrize(("change", "fields", "words"), [
    ({"patient_sex": "M"}, {"patient_ins"}, "a woman"),
    ({"patient_birth_date": "1948-03-02"}, {"patient_ins"}, "year of birth"),
    ({"patient_birth_date": "1955-09-14"}, {"patient_ins"}, "month 08"),
    ({"patient_birth_date": "2999-01-01", "patient_ins": ""}, {"patient_birth_date"}, "future"),
    ({"patient_birth_place": "00123"}, {"patient_birth_place"}, "INSEE"),
])
def test_an_identity_that_does_not_hold_together_is_a_422_naming_the_field(
        world: ApiWorld, change: dict[str, Any], fields: set[str], words: str) -> None:
    """The web form's rule and messages (apps.worklist.identity), through the service."""
    from apps.worklist.models import Case

    body = {**REQUEST_BODY, "patient_ins": "255081416802538", "patient_birth_date": "1955-08-14", **change}
    before = Case.objects.count()
    problem = assert_problem(world.client("a_rw").post("/api/v1/requests/", body, format="json"), 422)
    assert set(problem["errors"]) == fields and words in " ".join(problem["errors"][next(iter(fields))])
    assert Case.objects.count() == before


@pytest.mark.parametrize("url", [
    "https://ris.example.org/pds",
    "https://93.184.216.34:8443/hook?x=1",
    # A host of more than 253 characters: Django's URLField refused it while the schema said "format: uri".
    "https://" + "0" * 63 + "." + ".".join(["a" * 63] * 6) + "/",
    "https://ris.example.org:65535/a",
    "http://ris.example.org/pds",
    "https://user:pw@ris.example.org/",
    "https://ris.example.org:65536/",
    "https://ris.example.org/a b",
    "https://ris.example.org/#frag",
    "ftp://ris.example.org/",
])
def test_webhook_urls_are_accepted_exactly_as_the_schema_says(world: ApiWorld, url: str) -> None:
    doc = schema(world)
    published = doc["components"]["schemas"]["WebhookInputRequest"]["properties"]["url"]
    documented = bool(re.match(published["pattern"], url)) and len(url) <= published["maxLength"]
    resp = world.client("a_rw").post("/api/v1/webhooks/", {"url": url, "events": ["request.created"]},
                                     format="json")
    assert (resp.status_code == 201) == documented, (url, resp.content)
    if not documented:
        assert set(assert_problem(resp, 400)["errors"]) == {"url"}


def test_request_bodies_are_closed_objects_in_the_schema(world: ApiWorld) -> None:
    components = schema(world)["components"]["schemas"]
    for name in ("RequestInputRequest", "CancelInputRequest", "WebhookInputRequest"):
        assert components[name]["additionalProperties"] is False, name


def test_other_refusals_are_problem_documents_too(world: ApiWorld) -> None:
    # (429 with Retry-After: tests/api/test_authentication.py; an unmapped method is refused by the permission
    # matrix, a 403, before DRF would answer 405.)
    client = world.client("a_rw")
    assert_problem(client.delete("/api/v1/requests/"), 403)
    assert_problem(world.client().get("/api/v1/requests/"), 401)
    assert_problem(world.client("a_ro").post("/api/v1/requests/", REQUEST_BODY, format="json"), 403)
    assert_problem(client.get("/api/v1/requests/", HTTP_ACCEPT="application/xml"), 406)


@pytest.mark.parametrize("key", ["", " padded", "clé", "k" * 101])
def test_an_idempotency_key_outside_its_documented_pattern_is_a_400(world: ApiWorld, key: str) -> None:
    resp = world.client("a_rw").post("/api/v1/requests/", REQUEST_BODY, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert set(assert_problem(resp, 400)["errors"]) == {"Idempotency-Key"}


def test_a_body_with_every_optional_text_blank_is_valid_for_the_schema_and_accepted(world: ApiWorld) -> None:
    """The schema and the API agree on "": a blank optional text (an INS, a birthplace) the API accepts must be
    schema-valid, or a conforming client (schemathesis ST201) sees an invalid request accepted."""
    import jsonschema

    published = schema(world)
    body_schema = {**published["components"]["schemas"]["RequestInputRequest"],
                   "components": published["components"]}
    optional_texts = [name for name, prop in body_schema["properties"].items()
                      if name not in body_schema.get("required", []) and prop.get("type") == "string"
                      and "enum" not in prop and "format" not in prop]
    assert {"patient_ins", "patient_birth_place", "local_patient_id"} <= set(optional_texts)
    body = {**REQUEST_BODY, **{name: "" for name in optional_texts}}
    jsonschema.Draft202012Validator(body_schema).validate(body)  # raises if the schema refuses ""
    created = request_create(world, **{name: "" for name in optional_texts})
    assert created["id"]
