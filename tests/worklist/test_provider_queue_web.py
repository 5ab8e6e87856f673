"""End to end through the web client (issue 18, point 14): a case routed to a private provider's queue is
seen by the requesting site as waiting in that queue, listed in the worklist of the provider's radiologists,
claimed by one of them from the case page and reported; the coordinator sees the queue and the agreements'
restrictions in the coverage page, and configures the queue in the admin."""

from __future__ import annotations

from apps.routing.services import case_route
from apps.worklist.models import AssignmentState, CaseStatus
from tests.factories.provider import provider_queue_setup
from tests.factories.worklist import make_case


def test_routed_to_a_provider_queue_then_claimed_and_reported_on_the_web(demo, client):
    queue = provider_queue_setup(demo)
    case = case_route(case_id=make_case(demo, urgency="urgent", status="awaiting_reading").pk)
    assert case.assignment_state == AssignmentState.QUEUED
    client.force_login(demo.users["urgentiste"])
    assert f"In the queue of the private provider {queue.line.name}" in client.get("/worklist/site/").content.decode()
    client.force_login(demo.users["radio.simon22"])  # a Télérad radiologist with no shift on the roster
    rows = client.get("/worklist/rows").json()["html"]
    assert str(case.public_id) in rows and f"in the queue of {queue.line.name}" in rows
    page = f"/worklist/c/{case.public_id}/"
    assert 'id="claim-button"' in client.get(page).content.decode()
    assert client.post(f"{page}do/claim").status_code == 302
    resp = client.post(f"{page}do/sign", {"findings": "Pas d'hémorragie.", "conclusion": "Normal."},
                       HTTP_ACCEPT="application/json")
    assert resp.status_code == 200, resp.content
    case.refresh_from_db()
    assert case.status == CaseStatus.REPORTED and case.report.signed_by == demo.users["radio.simon22"]
    assert case.assignment_state == AssignmentState.ACKNOWLEDGED and case.assigned_line == queue.line


def test_coverage_shows_provider_queue_and_agreement_restrictions(demo, client):
    from apps.regions.models import Agreement

    queue = provider_queue_setup(demo)
    Agreement.objects.filter(partner=demo.establishments["telerad"]).update(pds_only=True)
    client.force_login(demo.users["coordinateur"])
    html = client.get("/rosters/coverage/").content.decode()
    queues = html[html.index('id="provider-queues"'):]
    assert queue.line.name in queues and f"{queue.capacity_per_hour}</td>" in queues
    agreements = html[html.index('id="agreements"'):]
    telerad_row = next(r for r in agreements.split("<tr>") if "Télérad" in r and demo.establishments["vierzon"].name in r)
    assert "PDS hours only" in telerad_row and "<td>CT</td>" in telerad_row
    assert "All hours" in agreements  # the others


def test_admin_configures_the_queue(demo, client):
    queue = provider_queue_setup(demo)
    client.force_login(demo.users["coordinateur"])
    assert client.get("/admin/rosters/providerqueue/").status_code == 200
    assert client.get(f"/admin/rosters/providerqueue/{queue.pk}/change/").status_code == 200
    assert client.get("/admin/regions/agreement/").status_code == 200
