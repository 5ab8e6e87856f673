from __future__ import annotations

import csv
import io
import re

import pytest
from django.utils import translation

from apps.audit.models import AuditEntry
from apps.dashboards.labels import COLUMNS, column_label
from tests.dashboards.test_selectors import data  # noqa: F401  (fixture)
from tests.factories.mesh import user_create

QUERY = "?start=2025-01-06&end=2025-01-12"


@pytest.fixture
def coordinator(data):  # noqa: F811
    m, _f = data
    return m.users["coord"]


def test_coordinator_lands_on_dashboard_and_sees_every_panel(client, data, coordinator):  # noqa: F811
    client.force_login(coordinator)
    assert client.get("/").url == "/dashboard/"
    r = client.get("/dashboard/" + QUERY)
    assert r.status_code == 200
    html = r.content.decode()
    for panel in ("activity", "turnaround", "load", "actors", "coverage", "risks"):
        assert f'id="panel-{panel}"' in html
    assert "vendor/chartjs/chart.umd.min.js" in html and "cdn" not in html.lower()
    assert 'class="overdue"' in html  # the overdue risk review is highlighted
    entry = AuditEntry.objects.filter(object_type="dashboards.dashboard").latest("id")
    assert entry.actor_username == "coord" and entry.action == "read" and entry.channel == "web"


def csv_rows(response) -> list[list[str]]:
    """The rows of a CSV export: UTF-8 with a byte-order mark, ";"-separated (a French spreadsheet's)."""
    content = response.content.decode("utf-8")
    assert content.startswith("\ufeff")
    return list(csv.reader(io.StringIO(content[1:]), delimiter=";"))


def test_csv_export_of_a_table(client, data, coordinator):  # noqa: F811
    client.force_login(coordinator)
    r = client.get("/dashboard/export/activity_sites.csv" + QUERY, HTTP_ACCEPT_LANGUAGE="fr")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    assert csv_rows(r) == [["Site", "Demandes", "Interprétations", "Urgences", "Hors urgence"],
                           ["Site A TST", "3", "2", "2", "0"], ["Site B TST", "2", "1", "1", "0"]]
    # Scripts ask for the stable keys.
    rows = csv_rows(client.get("/dashboard/export/activity_sites.csv" + QUERY + "&keys=1"))
    assert rows[0] == ["site", "requests", "interpretations", "emergency", "non_emergency"]
    assert AuditEntry.objects.filter(action="export", object_id="activity_sites").exists()
    assert client.get("/dashboard/export/nope_table.csv").status_code == 404


@pytest.mark.parametrize("name", ["activity_heatmap", "activity_substitution", "activity_modalities",
                                  "turnaround_all", "turnaround_urgency", "turnaround_site", "turnaround_modality",
                                  "turnaround_line", "load_summary", "load_radiologists", "load_declines",
                                  "actors_establishments", "actors_users", "actors_modalities", "actors_training",
                                  "coverage_gaps", "risks_matrix", "risks_register", "risks_actions"])
def test_every_table_exports(client, data, coordinator, name):  # noqa: F811
    client.force_login(coordinator)
    r = client.get(f"/dashboard/export/{name}.csv" + QUERY, HTTP_ACCEPT_LANGUAGE="fr")
    assert r.status_code == 200 and len(r.content.splitlines()) >= 1
    # Every column has a French header, and no English weekday, stage or boolean is left in the cells.
    header, *rows = csv_rows(r)
    keys = csv_rows(client.get(f"/dashboard/export/{name}.csv" + QUERY + "&keys=1"))[0]
    with translation.override("fr"):
        assert header == [column_label(k) for k in keys]
    unlabelled = [k for k in keys if k not in COLUMNS and not re.fullmatch(r"\d\dh", k)]  # the heatmap's hours
    assert not unlabelled, unlabelled
    english = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "True", "False", "tonight", "all"}
    assert not english & {cell for row in rows for cell in row}


def test_establishment_admin_sees_only_their_establishment(client, data):  # noqa: F811
    m, _f = data
    admin_b = user_create(m, "adminb", "establishment_admin", "B")
    client.force_login(admin_b)
    assert client.get("/").url == "/dashboard/"
    r = client.get("/dashboard/" + QUERY)
    html = r.content.decode()
    assert r.status_code == 200 and "read-only" in html
    rows = csv_rows(client.get("/dashboard/export/activity_sites.csv" + QUERY))
    assert rows[1:] == [["Site B TST", "2", "1", "1", "0"]]
    # Asking for another site through the filters does not widen the scope.
    other = f"{QUERY}&site={m.sites['A'].pk}"
    rows = csv_rows(client.get("/dashboard/export/activity_sites.csv" + other))
    assert rows[1:] == [["Site B TST", "2", "1", "1", "0"]]


def test_radiologists_and_physicians_read_aggregates_of_their_establishment(client, data):  # noqa: F811
    """Issue 18, point 11: the indicators are shared by every actor, scoped to their establishment or line."""
    m, _f = data
    # The radiologist of the pivot P holding the pooled line: the cases read on that line (site A's two CTs).
    client.force_login(m.users["rone"])
    r = client.get("/dashboard/" + QUERY)
    assert r.status_code == 200 and "read-only" in r.content.decode()
    rows = csv_rows(client.get("/dashboard/export/activity_sites.csv" + QUERY))
    assert rows[1:] == [["Site A TST", "2", "2", "2", "0"]]
    entry = AuditEntry.objects.filter(object_type="dashboards.dashboard").latest("id")
    assert entry.actor_username == "rone" and entry.establishment_id == m.sites["P"].pk
    # The emergency physician of site A: site A only, whatever the filters ask.
    client.force_login(m.users["doc"])
    other = f"{QUERY}&site={m.sites['B'].pk}"
    rows = csv_rows(client.get("/dashboard/export/activity_sites.csv" + other))
    assert rows[1:] == [["Site A TST", "3", "2", "2", "0"]]
    assert 'href="/dashboard/"' in client.get("/worklist/site/").content.decode()  # the way in


def test_other_profiles_are_refused_and_the_refusal_audited(client, data):  # noqa: F811
    m, _f = data
    user_create(m, "manipa", "radiographer", "A")
    client.force_login(m.users["manipa"])
    assert client.get("/dashboard/").status_code == 403
    assert AuditEntry.objects.filter(action="access_refused", actor_username="manipa").exists()
    # A radiologist attached to no establishment has no scope: refused, and the refusal audited.
    loose = user_create(m, "rloose", "radiologist")
    client.force_login(loose)
    assert client.get("/dashboard/").status_code == 403
    assert AuditEntry.objects.filter(action="access_refused", actor_username="rloose").exists()
    client.logout()
    assert client.get("/dashboard/").status_code == 302  # to the login page
