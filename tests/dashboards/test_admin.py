"""Risk register and training sessions are kept in the admin by the coordinator; the demo seeds a few."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse

from apps.dashboards.models import RiskEntry, TrainingSession


def test_demo_seeds_risks_and_training(demo):
    assert RiskEntry.objects.filter(region=demo.region).count() >= 4
    assert TrainingSession.objects.filter(region=demo.region).count() >= 4
    top = RiskEntry.objects.filter(region=demo.region).first()
    assert top.criticality == top.impact * top.probability == 12  # ordered by criticality


def test_coordinator_records_a_risk_and_a_training_session(client, demo):
    client.force_login(demo.users["coordinateur"])
    for model in ("riskentry", "trainingsession"):
        assert client.get(reverse(f"admin:dashboards_{model}_changelist")).status_code == 200
    r = client.post(reverse("admin:dashboards_riskentry_add"), {
        "region": demo.region.pk, "risk": "Panne du PACS régional", "nature": "technical", "impact": "3",
        "probability": "2", "status": "open", "last_review": "2026-11-01", "review_interval_days": "90",
        # Several preventive actions, each with its owner, due date and status (issue 18, point 11).
        "actions-TOTAL_FORMS": "2", "actions-INITIAL_FORMS": "0", "actions-MIN_NUM_FORMS": "0",
        "actions-MAX_NUM_FORMS": "1000",
        "actions-0-action": "PRA", "actions-0-owner": "GHT", "actions-0-due_date": "2026-12-31",
        "actions-0-status": "planned",
        "actions-1-action": "Exercice de bascule", "actions-1-owner": "DSI", "actions-1-due_date": "2027-01-15",
        "actions-1-status": "in_progress"})
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    risk = RiskEntry.objects.get(risk="Panne du PACS régional")
    assert risk.criticality == 6
    assert sorted(risk.actions.values_list("owner", "status")) == [("DSI", "in_progress"), ("GHT", "planned")]
    r = client.post(reverse("admin:dashboards_trainingsession_add"), {
        "region": demo.region.pk, "date": "2026-11-20", "profile": "radiographer", "people_trained": "7",
        "establishment": demo.establishments["vierzon"].pk, "topic": "Téléassistance"})
    assert r.status_code == 302
    assert TrainingSession.objects.get(topic="Téléassistance").people_trained == 7
    bad = client.post(reverse("admin:dashboards_riskentry_add"), {
        "region": demo.region.pk, "risk": "x", "nature": "technical", "impact": "5", "probability": "1",
        "status": "open", "last_review": "2026-11-01", "review_interval_days": "90",
        "actions-TOTAL_FORMS": "0", "actions-INITIAL_FORMS": "0", "actions-MIN_NUM_FORMS": "0",
        "actions-MAX_NUM_FORMS": "1000"})
    assert bad.status_code == 200 and not RiskEntry.objects.filter(risk="x").exists()  # impact is 1-4


def test_manual_incident_in_admin_is_linked_to_the_case(client, demo):
    from apps.traceability.models import TechnicalIncident
    from apps.worklist.models import Case
    from tests.factories.mesh import case_create_raw

    class _M:  # the demo's site, in the shape case_create_raw expects
        sites = {"vierzon": demo.establishments["vierzon"]}

    case = case_create_raw(_M, "vierzon", "CT", "urgent", dt.datetime.now(dt.UTC))
    client.force_login(demo.users["coordinateur"])
    r = client.post(reverse("admin:traceability_technicalincident_add"), {
        "at_0": "2026-11-23", "at_1": "02:10:00", "kind": "network_outage", "severity": "warning",
        "source": "manual", "case": case.pk, "summary": "Lien VPN coupé 20 min", "details": "{}"})
    assert r.status_code == 302, r.context["adminform"].form.errors
    incident = TechnicalIncident.objects.get(summary="Lien VPN coupé 20 min")
    assert incident.case_id == case.pk and incident.establishment_id == case.site_id
    assert incident.reported_by_id == demo.users["coordinateur"].pk
    assert Case.objects.get(pk=case.pk).incidents.count() == 1
