"""The coordinator's roster calendar (week and month by line, kinds coloured, rule breaches flagged), the coloured
coverage grid and the navigation bar every coordinator page shares, on the demo region."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client

from apps.regions.calendar import PARIS
from apps.rosters.models import OnCallLine, Shift
from apps.rosters.selectors import CoverageCell, Gap, coverage_state

pytestmark = pytest.mark.django_db

MONDAY = dt.date(2026, 11, 30)


def _client(demo: Any, username: str = "coordinateur") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    client.force_login(demo.users[username])
    return client


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=PARIS)


def test_the_week_shows_each_line_by_day_with_kinds_and_the_broken_rules(demo: Any) -> None:
    line = OnCallLine.objects.get(name__startswith="Ligne mutualisée Nord")
    who = demo.users["radiologue"]
    flagged = Shift.objects.create(line=line, radiologist=who, start=_at(MONDAY + dt.timedelta(days=2), 18),
                                   end=_at(MONDAY + dt.timedelta(days=3), 8), kind="garde", flags=[
        {"code": "rest", "message": "Only 1.5 h of rest after the garde ending 02/12/2026 16:30: 11 hours are "
                                    "required."}])
    html = _client(demo).get("/rosters/calendar/?day=2026-12-02").content.decode()
    assert "semaine du 30 novembre au 6 décembre 2026" in html
    head = re.search(r"<thead>(.*?)</thead>", html, re.S).group(1)
    assert re.findall(r"<th scope=\"col\"[^>]*>([^<]+)</th>", head)[1:] == [
        "lundi 30/11", "mardi 1/12", "mercredi 2/12", "jeudi 3/12", "vendredi 4/12", "samedi 5/12", "dimanche 6/12"]
    row = re.search(rf'<tr data-line="{line.pk}">(.*?)</tr>', html, re.S).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    assert len(cells) == 7 and f'data-shift="{flagged.pk}"' in cells[2]  # on the Wednesday it starts
    chip = re.search(rf'<a [^>]*class="([^"]*)" data-shift="{flagged.pk}"', cells[2]).group(1)
    assert chip.split() == ["shift", "kind-garde", "role-primary", "conflict"]
    # Every demo shift of the week is there, coloured by kind.
    week = Shift.objects.filter(line__region=demo.region, line__active=True, start__gte=_at(MONDAY, 0),
                                start__lt=_at(MONDAY + dt.timedelta(days=7), 0))
    assert html.count('data-shift="') == week.count() + 1  # and once more in the list of broken rules
    assert {k for k in re.findall(r"kind-(\w+) role-", html)} >= {"garde", "remote", "astreinte"}
    assert "1 créneau enfreint une règle du tableau de garde" in html
    broken = re.search(r'<table id="conflicts">(.*?)</table>', html, re.S).group(1)
    assert "Seulement 1,5 h de repos" in broken and who.display_name in broken


def test_the_month_and_one_line(demo: Any) -> None:
    north = OnCallLine.objects.get(name__startswith="Ligne mutualisée Nord")
    client = _client(demo)
    html = client.get(f"/rosters/calendar/?view=month&day=2026-12-17&line={north.pk}").content.decode()
    assert "décembre 2026" in html and "0 créneau enfreint" in html
    head = re.search(r"<thead>(.*?)</thead>", html, re.S).group(1)
    assert head.count('<th scope="col"') == 1 + 31
    assert re.findall(r'<tr data-line="(\d+)">', html) == [str(north.pk)]
    assert "?view=month&amp;day=2026-11-01" in html and "?view=month&amp;day=2027-01-01" in html
    every = client.get("/rosters/calendar/?view=month&day=2026-12-17&line=nope").content.decode()
    assert len(re.findall(r'<tr data-line="(\d+)">', every)) == OnCallLine.objects.filter(
        region=demo.region, active=True).count()


def test_the_calendar_is_the_coordinators(demo: Any) -> None:
    assert _client(demo, "urgentiste").get("/rosters/calendar/").status_code == 403
    assert _client(demo, "radiologue").get("/rosters/calendar/").status_code == 403


def test_coverage_states() -> None:
    start, end = _at(MONDAY, 18), _at(MONDAY + dt.timedelta(days=1), 8)

    def cell(*gaps: Gap, lines: tuple[str, ...] = ("L",)) -> CoverageCell:
        return CoverageCell(1, "CH", "CT", "Mon 30/11 night", "night", start, end, lines, (), gaps)

    assert coverage_state(cell()) == "covered"
    assert coverage_state(cell(Gap(start, _at(MONDAY, 22)))) == "partial"
    assert coverage_state(cell(Gap(start, end), lines=())) == "uncovered"


def test_the_coverage_grid_is_coloured_and_compact(demo: Any) -> None:
    line = OnCallLine.objects.get(name__startswith="Ligne mutualisée Sud")
    # The southern line loses its Wednesday night: the sites only it serves are uncovered then.
    Shift.objects.filter(line=line, start__gte=_at(MONDAY + dt.timedelta(days=2), 12),
                         start__lt=_at(MONDAY + dt.timedelta(days=3), 6)).delete()
    html = _client(demo).get("/rosters/coverage/?week=2026-11-30").content.decode()
    grid = re.search(r'<table id="coverage">(.*?)</table>', html, re.S).group(1)
    states = re.findall(r'<td class="cov cov-(\w+)" data-state="\1"', grid)
    assert "uncovered" in states and "covered" in states
    assert len(states) == grid.count("<td class=\"cov ")
    # A cell holds one symbol and a word for screen readers; the lines and radiologists are in its title.
    assert "✗<span class=\"visually-hidden\"> non couvert</span>" in grid
    assert re.search(r"(\d+) période", html) and 'id="gaps-details"' in html


NAV_PAGES = {"/dashboard/": "dashboards:home", "/rosters/coverage/": "rosters:coverage",
             "/rosters/calendar/": "rosters:calendar", "/routing/console/": "routing:console",
             "/admin/rosters/intervention/": "admin:rosters_intervention_changelist", "/admin/": "admin:index"}


def test_every_coordinator_page_has_the_same_navigation_bar(demo: Any) -> None:
    client = _client(demo)
    bars = {}
    for path in NAV_PAGES:
        resp = client.get(path)
        assert resp.status_code == 200, path
        html = resp.content.decode()
        bar = html[html.index('<a href="/dashboard/"'):]
        bar = bar[:bar.index('<a href="/admin/"')] + bar[bar.index('<a href="/admin/"'):].split("</a>")[0]
        links = re.findall(r'<a href="([^"]+)"( aria-current="page")?>', bar)
        bars[path] = [href for href, _current in links if href in NAV_PAGES or href == "/worklist/site/"]
        assert [href for href, current in links if current] == [path], path
    first = next(iter(bars.values()))
    assert first == [*NAV_PAGES.keys()][:5] + ["/worklist/site/", "/admin/"]
    assert all(bar == first for bar in bars.values()), bars


def test_other_roles_do_not_get_the_coordinator_bar(demo: Any) -> None:
    html = _client(demo, "urgentiste").get("/worklist/site/").content.decode()
    assert "/rosters/calendar/" not in html and "/routing/console/" not in html
