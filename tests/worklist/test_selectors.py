"""Who sees which case: the one rule (``apps.worklist.selectors.cases_visible_to``) pinned per role through
the real pages of the web app and the real API endpoints (REST, FHIR, tele-act record). A case outside the
rule is 404 everywhere; a case inside it is readable and the read is audited."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.audit.models import AuditEntry
from apps.worklist.models import Case, ExpertRequest
from apps.worklist.selectors import Visibility, cases_visible_to
from tests.factories.worklist import make_case

pytestmark = pytest.mark.django_db


def web(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def api_key(establishment: Any) -> APIClient:
    from apps.api.services import api_key_create

    _, raw = api_key_create(name=f"RIS {establishment.pk}", establishment_id=establishment.pk, scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def web_status(user: User, case: Case) -> int:
    return web(user).get(f"/worklist/c/{case.public_id}/").status_code


def api_status(client: APIClient, case: Case) -> int:
    return client.get(f"/api/v1/requests/{case.public_id}/").status_code


def fhir_status(client: APIClient, case: Case) -> int:
    return client.get(f"/api/v1/fhir/ServiceRequest/{case.public_id}").status_code


def api_list_ids(client: APIClient, path: str = "/api/v1/requests/") -> set[str]:
    resp = client.get(path)
    assert resp.status_code == 200, resp.content
    return {r["id"] for r in resp.json()["results"]}


def reads_of(case: Case, channel: str) -> int:
    return AuditEntry.objects.filter(action="read", object_id=str(case.pk), patient_data=True,
                                     channel=channel).count()


def other_region_case(demo: Any) -> tuple[Case, User]:
    """A case of an establishment of another region, and that region's coordinator."""
    from apps.regions.models import Establishment, Region, Territory
    from apps.worklist.services import case_create
    from tests.factories.worklist import case_input

    region = Region.objects.create(code="OTH", name="Other region")
    territory = Territory.objects.create(region=region, code="OT1", name="Other territory")
    site = Establishment.objects.create(name="CH Elsewhere", finess="750000001", kind="requesting",
                                        territory=territory, city="Paris")
    case, _ = case_create(site_id=site.pk, data=case_input(patient_birth_name="AILLEURS"), requested_by_id=None)
    coordinator = User.objects.create(username="coord.other", role="ars_coordinator", region=region)
    return case, coordinator


def radiologue_line(demo: Any) -> Any:
    """The line the demo's radiologist on call holds right now (Ligne mutualisée Sud)."""
    from apps.rosters.selectors import lines_for_user

    return lines_for_user(user_id=demo.users["radiologue"].pk, at=timezone.now()).get()


# --- Site staff and API keys: their establishment, nothing else --------------------------------------------


# The establishment administrator reads no identified case (aggregates only): tests/accounts/test_permission_matrix.py.
@pytest.mark.parametrize("own,other", [("urgentiste", "urgentiste.blois"), ("manip", "urgentiste.blois")])
def test_site_staff_see_their_establishment_only_in_web_and_api(demo: Any, own: str, other: str) -> None:
    case = make_case(demo)  # requested at Vierzon
    blois_case = make_case(demo, site="blois", physician="urgentiste.blois", patient_birth_name="BLESOIS")
    me, stranger = demo.users[own], demo.users[other]

    web_before, api_before = reads_of(case, "web"), reads_of(case, "api")
    assert web_status(me, case) == 200
    assert api_status(api(me), case) == 200
    assert reads_of(case, "web") == web_before + 1 and reads_of(case, "api") == api_before + 1
    assert api_list_ids(api(me)) == {str(case.public_id)}
    assert web_status(me, blois_case) == 404
    assert api_status(api(me), blois_case) == 404 and fhir_status(api(me), blois_case) == 404

    assert web_status(stranger, case) == 404
    assert api_status(api(stranger), case) == 404 and fhir_status(api(stranger), case) == 404
    assert str(case.public_id) not in api_list_ids(api(stranger))
    assert web(stranger).get(f"/traceability/cases/{case.public_id}/record/").status_code == 404


def test_api_key_sees_its_establishment_only(demo: Any) -> None:
    case = make_case(demo)
    vierzon, blois = api_key(demo.establishments["vierzon"]), api_key(demo.establishments["blois"])
    assert api_status(vierzon, case) == 200 and fhir_status(vierzon, case) == 200
    assert api_list_ids(vierzon) == {str(case.public_id)}
    assert api_status(blois, case) == 404 and fhir_status(blois, case) == 404
    assert api_list_ids(blois) == set()


# --- Coordinator: their region -----------------------------------------------------------------------------


def test_coordinator_sees_their_region_only(demo: Any) -> None:
    case = make_case(demo)
    elsewhere, other_coordinator = other_region_case(demo)
    coordinator = demo.users["coordinateur"]
    assert web_status(coordinator, case) == 200 and api_status(api(coordinator), case) == 200
    assert web_status(coordinator, elsewhere) == 404 and api_status(api(coordinator), elsewhere) == 404
    assert api_list_ids(api(coordinator)) == {str(case.public_id)}
    assert web_status(other_coordinator, case) == 404 and api_status(api(other_coordinator), case) == 404
    assert web_status(other_coordinator, elsewhere) == 200
    assert api_list_ids(api(other_coordinator)) == {str(elsewhere.public_id)}


# --- Radiologists: the cases they take part in ----------------------------------------------------------------


def test_radiologist_sees_assigned_and_claimed_cases_in_web_and_api(demo: Any) -> None:
    assigned = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    claimed = make_case(demo, status="in_progress", patient_birth_name="CLAIMED")
    Case.objects.filter(pk=claimed.pk).update(claimed_by=demo.users["radio.durand1"], claimed_at=timezone.now())
    radiologue, durand = demo.users["radiologue"], demo.users["radio.durand1"]

    assert web_status(radiologue, assigned) == 200 and api_status(api(radiologue), assigned) == 200
    assert web_status(durand, claimed) == 200 and api_status(api(durand), claimed) == 200
    assert str(assigned.public_id) in api_list_ids(api(radiologue), "/api/v1/worklist/")
    assert api_list_ids(api(durand), "/api/v1/worklist/") == {str(claimed.public_id)}
    # Someone else's case, even at a site they are authorised to read for, is not theirs.
    assert web_status(durand, assigned) == 404 and api_status(api(durand), assigned) == 404


def test_radiologist_sees_the_unassigned_cases_of_the_line_they_hold(demo: Any) -> None:
    """The line's unclaimed case is visible to whoever holds the line now (to claim it), on the web and in
    the API alike; the API's /worklist/ stays the radiologist's own queue (assigned or claimed)."""
    line = radiologue_line(demo)
    case = make_case(demo, status="awaiting_reading")
    Case.objects.filter(pk=case.pk).update(assigned_line=line)
    radiologue = demo.users["radiologue"]

    assert web_status(radiologue, case) == 200
    assert f"/worklist/c/{case.public_id}/" in web(radiologue).get("/worklist/").context["rows_html"]
    assert api_status(api(radiologue), case) == 200
    assert str(case.public_id) in api_list_ids(api(radiologue))
    assert str(case.public_id) not in api_list_ids(api(radiologue), "/api/v1/worklist/")
    # Not on that line now: a radiologist of another team, and one of the private provider who is
    # authorised to read for Vierzon (an authorisation to be assigned, not to browse the site's patients).
    for username in ("radio.andre10", "radio.morel20"):
        other = demo.users[username]
        assert web_status(other, case) == 404, username
        assert api_status(api(other), case) == 404 and fhir_status(api(other), case) == 404, username
        assert str(case.public_id) not in api_list_ids(api(other)), username


def test_expert_sees_the_case_of_an_expert_request_addressed_to_them(demo: Any) -> None:
    from apps.rosters.models import LineKind, OnCallLine

    case = make_case(demo, assign_to="radiologue", status="in_progress")
    nobody_holds = OnCallLine.objects.create(region=demo.region, kind=LineKind.REFERRAL, name="Neuro (test)")
    ExpertRequest.objects.create(case=case, requested_by=demo.users["radiologue"], line=nobody_holds,
                                 expert=demo.users["radio.roux23"], question="Dissection?",
                                 requested_at=timezone.now())
    expert, colleague = demo.users["radio.roux23"], demo.users["radio.martin24"]
    assert web_status(expert, case) == 200
    assert api_status(api(expert), case) == 200 and fhir_status(api(expert), case) == 200
    assert web_status(colleague, case) == 404 and api_status(api(colleague), case) == 404


def test_radiologist_sees_studies_of_their_cases_only(demo: Any) -> None:
    from apps.studies.models import Study

    mine = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    other = make_case(demo, status="awaiting_reading", patient_birth_name="OTHER")
    studies = {c.pk: Study.objects.create(study_uid=f"1.2.826.0.1.3680043.9.{uuid.uuid4().int % 10**12}",
                                          site=demo.establishments["vierzon"], case=c,
                                          study_datetime=timezone.now() - dt.timedelta(minutes=5))
               for c in (mine, other)}
    unmatched = Study.objects.create(study_uid="1.2.826.0.1.3680043.9.424242", site=demo.establishments["vierzon"])
    radiologue = api(demo.users["radiologue"])
    assert api_list_ids(radiologue, "/api/v1/studies/") == {studies[mine.pk].pk}
    assert radiologue.get(f"/api/v1/studies/{studies[other.pk].pk}/").status_code == 404
    assert radiologue.get(f"/api/v1/fhir/ImagingStudy/{studies[other.pk].pk}").status_code == 404
    site = api_key(demo.establishments["vierzon"])
    assert api_list_ids(site, "/api/v1/studies/") == {studies[mine.pk].pk, studies[other.pk].pk, unmatched.pk}
    assert api_list_ids(api_key(demo.establishments["blois"]), "/api/v1/studies/") == set()


# --- The selector itself ----------------------------------------------------------------------------------


def test_own_queue_narrows_only_radiologists(demo: Any) -> None:
    line = radiologue_line(demo)
    on_line = make_case(demo, status="awaiting_reading")
    Case.objects.filter(pk=on_line.pk).update(assigned_line=line)
    assigned = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    radiologue, physician = demo.users["radiologue"], demo.users["urgentiste"]
    assert set(cases_visible_to(radiologue)) == {on_line, assigned}
    assert set(cases_visible_to(radiologue, visibility=Visibility.OWN_QUEUE)) == {assigned}
    assert set(cases_visible_to(physician, visibility=Visibility.OWN_QUEUE)) == set(cases_visible_to(physician))


@pytest.mark.parametrize("role", ["", "integration"])
def test_no_role_sees_nothing_even_with_a_membership(demo: Any, role: str) -> None:
    from apps.accounts.models import Membership

    make_case(demo)
    user = User.objects.create(username=f"nobody{role}", role=role)
    Membership.objects.create(user=user, establishment=demo.establishments["vierzon"])
    assert not cases_visible_to(user).exists()
    # No role, no route: the permission matrix refuses the API outright (apps.accounts.matrix).
    assert api(user).get("/api/v1/requests/").status_code == 403


def test_anonymous_sees_nothing(demo: Any) -> None:
    from django.contrib.auth.models import AnonymousUser

    case = make_case(demo)
    assert not cases_visible_to(AnonymousUser()).exists()
    assert Client().get(f"/worklist/c/{case.public_id}/").status_code == 302  # to the login page
    assert APIClient().get(f"/api/v1/requests/{case.public_id}/").status_code in (401, 403)
