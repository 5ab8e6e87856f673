"""Agreement first in the worklist (issue 18, point 2): a pooled line's queue lists a site's case only to the
radiologists whose employing establishment has an agreement in force with that site (claiming was already
refused; listing showed them anyway)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from apps.regions.models import Agreement, AgreementStatus
from apps.rosters.models import OnCallLine, Shift
from apps.worklist.models import Case
from apps.worklist.selectors import radiologist_worklist
from tests.factories.worklist import make_case


def _pool_south_now(demo, *usernames: str) -> OnCallLine:
    now = timezone.now()
    line = OnCallLine.objects.get(region=demo.region, name__startswith="Ligne mutualisée Sud")
    Shift.objects.filter(line=line, start__lte=now, end__gt=now).delete()
    for username in usernames:
        Shift.objects.create(line=line, radiologist=demo.users[username], role="primary", kind="remote",
                             start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=6))
    return line


def test_pooled_line_queue_hides_sites_without_the_readers_agreement(demo, client):
    Agreement.objects.filter(requesting=demo.establishments["vierzon"], partner=demo.establishments["bourges"]) \
        .update(status=AgreementStatus.EXPIRED, valid_until=timezone.now().date() - dt.timedelta(days=1))
    line = _pool_south_now(demo, "radio.vincent6", "radio.durand1")  # Bourges, Tours
    vierzon = make_case(demo, urgency="urgent", status="awaiting_reading")
    stamand = make_case(demo, site="stamand", urgency="urgent", status="awaiting_reading")
    Case.objects.filter(pk__in=[vierzon.pk, stamand.pk]).update(assigned_line=line)  # on the line's queue, nobody's yet
    bourges = set(radiologist_worklist(user=demo.users["radio.vincent6"]).values_list("pk", flat=True))
    tours = set(radiologist_worklist(user=demo.users["radio.durand1"]).values_list("pk", flat=True))
    assert vierzon.pk in tours and vierzon.pk not in bourges
    assert stamand.pk in bourges  # Bourges's agreement with Saint-Amand is still in force
    # The page and the case page agree with the list.
    client.force_login(demo.users["radio.vincent6"])
    assert f"/worklist/c/{vierzon.public_id}/" not in client.get("/worklist/").content.decode()
    assert client.get(f"/worklist/c/{vierzon.public_id}/").status_code == 404
    # A case assigned to the radiologist by name stays theirs (the coordinator's choice is checked elsewhere).
    Case.objects.filter(pk=vierzon.pk).update(assigned_to=demo.users["radio.vincent6"])
    assert radiologist_worklist(user=demo.users["radio.vincent6"]).filter(pk=vierzon.pk).exists()
