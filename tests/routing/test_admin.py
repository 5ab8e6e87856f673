"""The routing rules admin: a coordinator configures rules; a target without an agreement is refused."""

from __future__ import annotations

from apps.rosters.models import OnCallLine
from apps.routing.models import RoutingRule


def _post(client, demo, line, site="gien", name="Gien CT"):
    return client.post("/admin/routing/routingrule/add/", {
        "region": demo.region.pk, "name": name, "scope_kind": "site", "site": demo.establishments[site].pk,
        "zone": "", "modalities": ["CT"], "period_kinds": ["weeknight", "weekend", "holiday"], "priority": 10,
        "delay_vital_minutes": 5, "delay_urgent_minutes": 15, "delay_deferred_minutes": 60, "active": "on",
        "targets-TOTAL_FORMS": 1, "targets-INITIAL_FORMS": 0, "targets-MIN_NUM_FORMS": 0,
        "targets-MAX_NUM_FORMS": 1000, "targets-0-order": 0, "targets-0-line": line.pk,
    })


def test_rule_admin_refuses_target_without_agreement_and_accepts_a_valid_one(demo, client):
    client.force_login(demo.users["coordinateur"])
    assert client.get("/admin/routing/routingrule/").status_code == 200
    gie = OnCallLine.objects.create(region=demo.region, name="Ligne GIE", kind="pooled")
    gie.holders.add(demo.establishments["gie"])
    gie.modalities.add("CT")
    gie.served_sites.add(demo.establishments["gien"])
    resp = _post(client, demo, gie)
    assert resp.status_code == 200
    assert "No agreement in force" in resp.content.decode()
    assert not RoutingRule.objects.filter(name="Gien CT").exists()
    north = OnCallLine.objects.get(name__startswith="Ligne mutualisée Nord")
    resp = _post(client, demo, north, name="Gien CT nord")
    assert resp.status_code == 302, resp.content.decode()[:3000]
    rule = RoutingRule.objects.get(name="Gien CT nord")
    assert [t.line for t in rule.targets.all()] == [north] and rule.history.exists()
