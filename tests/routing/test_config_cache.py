"""The decision's configuration cache (apps.routing.selectors._cached): a decision reads the region's
configuration (agreements, rules, line holders, memberships) from a per-process cache, and any change of that
configuration made in the process clears it, so the next decision sees the change."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import Membership
from apps.regions.models import Agreement, AgreementStatus
from apps.routing import selectors
from apps.routing.selectors import routing_warm_up
from apps.routing.services import case_route
from apps.worklist.models import AssignmentState
from tests.factories.worklist import make_case
from tests.routing.test_agreements_per_radiologist import _pool_south_now


def _reads(demo) -> tuple[int, object]:
    case_id = make_case(demo, urgency="urgent").pk
    with CaptureQueriesContext(connection) as ctx:
        case = case_route(case_id=case_id)
    return len(ctx.captured_queries), case


def test_second_decision_reads_less_and_agrees(demo):
    _pool_south_now(demo, ("radio.vincent6", "primary"), ("radiologue", "backup"))  # vincent6: Bourges
    first, a = _reads(demo)
    second, b = _reads(demo)
    assert second < first  # agreements, holders and memberships came from the cache
    assert a.assignment_state == b.assignment_state == AssignmentState.OFFERED


def test_agreement_saved_in_process_is_seen_by_the_next_decision(demo):
    _pool_south_now(demo, ("radio.vincent6", "primary"))  # Bourges's radiologist, alone on the line
    assert _reads(demo)[1].assigned_to == demo.users["radio.vincent6"]
    # The agreement expires (saved through the ORM, as the admin does): the cached facts are forgotten.
    for agreement in Agreement.objects.filter(requesting=demo.establishments["vierzon"],
                                              partner=demo.establishments["bourges"]):
        agreement.status, agreement.valid_until = AgreementStatus.EXPIRED, timezone.now().date() - dt.timedelta(1)
        agreement.save()
    assert _reads(demo)[1].assigned_to != demo.users["radio.vincent6"]


def test_membership_change_is_seen_by_the_next_decision(demo):
    _pool_south_now(demo, ("radio.vincent6", "primary"))
    assert _reads(demo)[1].assigned_to == demo.users["radio.vincent6"]
    Agreement.objects.filter(requesting=demo.establishments["vierzon"], partner=demo.establishments["bourges"]) \
        .update(status=AgreementStatus.EXPIRED)  # a bulk update sends no signal: the cache still holds it ...
    Membership.objects.filter(user=demo.users["radio.vincent6"]).delete()  # ... until a membership changes
    Membership.objects.create(user=demo.users["radio.vincent6"], establishment=demo.establishments["bourges"])
    assert _reads(demo)[1].assigned_to != demo.users["radio.vincent6"]


def test_cases_and_decisions_do_not_clear_it(demo):
    _pool_south_now(demo, ("radiologue", "primary"))
    _reads(demo)
    assert any(key[0] == "holders" for key in selectors._cache)
    _reads(demo)  # a case, a decision, an event, notifications were written
    assert any(key[0] == "holders" for key in selectors._cache)


def test_warm_up_loads_the_calendars(demo):
    selectors._cache.clear()
    routing_warm_up()
    assert any(key[0].startswith("calendar:") for key in selectors._cache)
