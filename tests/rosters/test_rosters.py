"""Roster services, coverage report, CSV import, iCal feed and the coordinator's page on the demo region."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from icalendar import Calendar

from apps.core.errors import ApplicationError
from apps.regions.calendar import PARIS
from apps.rosters.models import OnCallLine, Shift
from apps.rosters.selectors import coverage_report, ical_token, lines_for_user, on_duty_for_line
from apps.rosters.services import roster_import_csv, shift_create
from apps.routing.selectors import on_duty


def test_demo_covers_every_site_now_and_for_two_weeks(demo):
    today = timezone.now().astimezone(PARIS).date()
    for week in (today, today + dt.timedelta(days=7)):
        report = coverage_report(region_id=demo.region.pk, week_start=week)
        assert report.cells
        # Periods ending beyond the 14 demo days are outside the promise.
        limit = timezone.now() + dt.timedelta(days=14)
        gaps = [c for c in report.gaps if c.end <= limit and c.start >= timezone.now()]
        assert gaps == [], [(c.site_name, c.modality, c.period_label) for c in gaps[:5]]
    sites = [e for e in demo.establishments.values() if e.kind == "requesting"]
    for at in (timezone.now(), timezone.now() + dt.timedelta(days=3, hours=5),
               timezone.now() + dt.timedelta(days=9, hours=13)):
        for site in sites:
            for code in ("CT", "MR", "XR"):
                duty = on_duty(site_id=site.pk, modality_code=code, at=at)
                assert any(d.role == "primary" for d in duty), (site.name, code, at)


def test_radiologue_on_duty_now_with_backup(demo):
    now = timezone.now()
    duty = on_duty(site_id=demo.establishments["vierzon"].pk, modality_code="CT", at=now)
    first = duty[0]
    assert first.name == demo.users["radiologue"].display_name and first.role == "primary"
    assert first.line_name.startswith("Ligne mutualisée Sud") and first.shift_end > now
    assert any(d.role == "backup" and d.line_id == first.line_id for d in duty)
    assert any(d.line_name.startswith("Télérad") for d in duty)
    assert list(lines_for_user(user_id=demo.users["radiologue"].pk, at=now)) == [OnCallLine.objects.get(
        pk=first.line_id)]
    neuro = OnCallLine.objects.get(subspecialty="neuro")
    assert on_duty_for_line(line_id=neuro.pk, at=now)


def test_shift_create_refuses_or_flags(demo):
    line = OnCallLine.objects.get(name__startswith="Ligne mutualisée Nord")
    senior = demo.users["radio.richard11"]  # over 60, has not volunteered
    start = timezone.now() + dt.timedelta(days=40)
    with pytest.raises(ApplicationError, match="volunteered"):
        shift_create(line=line, radiologist=senior, start=start, end=start + dt.timedelta(hours=12))
    shift = shift_create(line=line, radiologist=senior, start=start, end=start + dt.timedelta(hours=12),
                         allow_violations=True)
    assert [f["code"] for f in shift.flags] == ["over_60"]


def _csv(rows):
    return "line;radiologist;start;end;kind;role\n" + "\n".join(";".join(r) for r in rows) + "\n"


def test_csv_import_all_or_nothing(demo):
    south = OnCallLine.objects.get(name__startswith="Ligne mutualisée Sud").name
    before = Shift.objects.count()
    bad = _csv([
        (south, "radio.durand1", "2027-03-01 18:30", "2027-03-02 08:30", "garde", "primary"),
        (south, "radio.durand1", "2027-03-02 12:00", "2027-03-02 18:00", "remote", "primary"),  # 3.5 h rest
        ("Ligne inconnue", "radio.durand1", "2027-03-05 18:30", "2027-03-06 08:30", "garde", "primary"),
        (south, "nobody", "2027-03-05 18:30", "2027-03-06 08:30", "garde", "primary"),
        (south, "radio.andre10", "2027-03-07 18:30", "2027-03-08 08:30", "garde", "primary"),  # not authorised
    ])
    result = roster_import_csv(region_id=demo.region.pk, content=bad)
    assert not result.ok and Shift.objects.count() == before
    assert [n for n, _m in result.errors] == [3, 4, 5, 6]
    assert "rest" in result.errors[0][1] and "unknown line" in result.errors[1][1]
    good = _csv([
        (south, "radio.durand1", "2027-03-01 18:30", "2027-03-02 08:30", "garde", "primary"),
        (south, "10788208121", "2027-03-03 18:30", "2027-03-04 08:30", "garde", "backup"),
    ])
    result = roster_import_csv(region_id=demo.region.pk, content=good)
    assert result.ok and result.created == 2 and Shift.objects.count() == before + 2


def test_csv_import_admin_page(demo, client):
    client.force_login(demo.users["coordinateur"])
    page = client.get("/admin/rosters/shift/import/")
    assert page.status_code == 200
    from django.core.files.uploadedfile import SimpleUploadedFile

    content = _csv([("Ligne inconnue", "radio.durand1", "2027-03-05 18:30", "2027-03-06 08:30", "garde", "primary")])
    resp = client.post("/admin/rosters/shift/import/", {
        "region": demo.region.pk, "file": SimpleUploadedFile("march.csv", content.encode())})
    assert resp.status_code == 200 and "unknown line" in resp.content.decode()


def test_ical_feed(demo, client):
    user = demo.users["radiologue"]
    assert client.get(f"/rosters/ical/{user.pk}/wrong.ics").status_code == 404
    resp = client.get(f"/rosters/ical/{user.pk}/{ical_token(user.pk)}.ics")
    assert resp.status_code == 200 and resp["Content-Type"].startswith("text/calendar")
    cal = Calendar.from_ical(resp.content)
    events = [c for c in cal.walk("VEVENT")]
    assert len(events) == Shift.objects.filter(radiologist=user).count()
    assert "Ligne mutualisée Sud" in str(events[0]["SUMMARY"])


def test_coverage_page_for_coordinator_only(demo, client):
    client.force_login(demo.users["urgentiste"])
    assert client.get("/rosters/coverage/").status_code == 403
    client.force_login(demo.users["coordinateur"])
    resp = client.get("/rosters/coverage/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "CH" in html and 'id="coverage"' in html


def test_shift_admin_refuses_a_shift_breaking_a_roster_rule(demo, client):
    client.force_login(demo.users["coordinateur"])
    line = OnCallLine.objects.get(name__startswith="Ligne mutualisée Nord")
    before = Shift.objects.count()
    resp = client.post("/admin/rosters/shift/add/", {
        "line": line.pk, "radiologist": demo.users["radio.richard11"].pk,
        "start_0": "2027-02-01", "start_1": "18:30:00", "end_0": "2027-02-02", "end_1": "08:30:00",
        "kind": "garde", "role": "primary"})
    assert resp.status_code == 200 and "has not volunteered" in resp.content.decode()
    assert Shift.objects.count() == before
    resp = client.post("/admin/rosters/shift/add/", {
        "line": line.pk, "radiologist": demo.users["radio.andre10"].pk,
        "start_0": "2027-02-01", "start_1": "18:30:00", "end_0": "2027-02-02", "end_1": "08:30:00",
        "kind": "garde", "role": "primary"})
    assert resp.status_code == 302 and Shift.objects.count() == before + 1
