from __future__ import annotations

import csv
import io

import pytest

from apps.audit.models import AuditEntry
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


def test_csv_export_of_a_table(client, data, coordinator):  # noqa: F811
    client.force_login(coordinator)
    r = client.get("/dashboard/export/activity_sites.csv" + QUERY)
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert rows == [["site", "requests", "interpretations", "emergency", "non_emergency"],
                    ["Site A TST", "3", "2", "2", "0"], ["Site B TST", "2", "1", "1", "0"]]
    assert AuditEntry.objects.filter(action="export", object_id="activity_sites").exists()
    assert client.get("/dashboard/export/nope_table.csv").status_code == 404


@pytest.mark.parametrize("name", ["activity_heatmap", "activity_substitution", "activity_modalities",
                                  "turnaround_all", "turnaround_urgency", "turnaround_site", "turnaround_modality",
                                  "turnaround_line", "load_summary", "load_radiologists", "load_declines",
                                  "actors_establishments", "actors_users", "actors_modalities", "actors_training",
                                  "coverage_gaps", "risks_matrix", "risks_register"])
def test_every_table_exports(client, data, coordinator, name):  # noqa: F811
    client.force_login(coordinator)
    r = client.get(f"/dashboard/export/{name}.csv" + QUERY)
    assert r.status_code == 200 and len(r.content.splitlines()) >= 1


def test_establishment_admin_sees_only_their_establishment(client, data):  # noqa: F811
    m, _f = data
    admin_b = user_create(m, "adminb", "establishment_admin", "B")
    client.force_login(admin_b)
    assert client.get("/").url == "/dashboard/"
    r = client.get("/dashboard/" + QUERY)
    html = r.content.decode()
    assert r.status_code == 200 and "read-only" in html
    rows = list(csv.reader(io.StringIO(client.get("/dashboard/export/activity_sites.csv" + QUERY).content.decode())))
    assert rows[1:] == [["Site B TST", "2", "1", "1", "0"]]
    # Asking for another site through the filters does not widen the scope.
    other = f"{QUERY}&site={m.sites['A'].pk}"
    rows = list(csv.reader(io.StringIO(client.get("/dashboard/export/activity_sites.csv" + other).content.decode())))
    assert rows[1:] == [["Site B TST", "2", "1", "1", "0"]]


def test_other_profiles_are_refused(client, data):  # noqa: F811
    m, _f = data
    client.force_login(m.users["rone"])
    assert client.get("/dashboard/").status_code == 403
    client.logout()
    assert client.get("/dashboard/").status_code == 302  # to the login page
