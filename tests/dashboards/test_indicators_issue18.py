"""Issue 18, point 11: the hourly distribution counts interpretations, the CT vs ultrasound watch counts every
ultrasound request (received by DICOM without a request, redirected), and the risk register keeps several
preventive actions per risk, each with its owner, due date and status."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from apps.dashboards.models import RiskAction, RiskEntry
from apps.dashboards.services import dashboard_aggregates_rebuild
from tests.dashboards.test_selectors import data, tables  # noqa: F401  (fixture)
from tests.factories.mesh import case_create_raw, paris


def test_the_hourly_distribution_counts_reports_signed_not_requests(data):  # noqa: F811
    m, f = data
    # Requested at 22:00 on Tuesday, never signed; requested at 09:00 on Wednesday, signed at 14:10.
    case_create_raw(m, "A", "CT", "urgent", paris(2025, 1, 7, 22))
    case_create_raw(m, "B", "CT", "urgent", paris(2025, 1, 8, 9), signed_at=paris(2025, 1, 8, 14, 10))
    for use_aggregates in (False, True):
        if use_aggregates:
            dashboard_aggregates_rebuild(since=dt.date(2025, 1, 1), today=dt.date(2025, 1, 13))
        t = tables(f, "activity")
        heat = {row["weekday"]: row for row in t["activity_heatmap"]}
        assert heat["Tue"]["22h"] == 0 and heat["Wed"]["09h"] == 0 and heat["Wed"]["14h"] == 1, use_aggregates
        assert sum(v for row in t["activity_heatmap"] for k, v in row.items() if k != "weekday") == 4


def test_ultrasound_received_by_dicom_without_request_counts_in_the_substitution_watch(data):  # noqa: F811
    from apps.studies.models import Study, StudyStatus

    m, f = data
    for n, site in enumerate(("B", "B", "A")):
        Study.objects.create(study_uid=f"1.2.3.{n}", site=m.sites[site], modality="US", ultrasound=True,
                             status=StudyStatus.NOT_ROUTED, first_received_at=paris(2025, 1, 8, 3),
                             last_received_at=paris(2025, 1, 8, 3))
    # Outside the period: not counted.
    Study.objects.create(study_uid="1.2.3.9", site=m.sites["B"], modality="US", ultrasound=True,
                         status=StudyStatus.NOT_ROUTED, first_received_at=paris(2025, 2, 1),
                         last_received_at=timezone.now())
    rows = {r["site"]: r for r in tables(f, "activity")["activity_substitution"]}
    assert rows["Site A TST"]["us_requests"] == 2 and rows["Site A TST"]["us_received_by_dicom"] == 1
    assert rows["Site A TST"]["us_redirected"] == 1 and rows["Site A TST"]["ct_per_us"] == 1.0
    assert rows["Site B TST"]["us_requests"] == 2 and rows["Site B TST"]["us_received_by_dicom"] == 2
    assert rows["Site B TST"]["ct_per_us"] == 0.5


def test_several_preventive_actions_per_risk_with_owner_due_date_and_status(data, client):  # noqa: F811
    m, f = data
    risk = RiskEntry.objects.get(risk="Radiologist saturation")
    RiskAction.objects.create(risk=risk, action="Overflow threshold to the provider", owner="ARS",
                              due_date=dt.date(2025, 1, 5), status="in_progress")  # overdue on the 10th
    RiskAction.objects.create(risk=risk, action="Monthly load review", owner="Medical coordination",
                              due_date=dt.date(2025, 3, 1), status="planned")
    RiskAction.objects.create(risk=risk, action="Recruit two radiologists", owner="GHT",
                              due_date=dt.date(2024, 12, 1), status="done", done_on=dt.date(2024, 11, 30))
    t = tables(f, "risks")
    reg = {r["risk"]: r for r in t["risks_register"]}
    assert (reg["Radiologist saturation"]["actions"], reg["Radiologist saturation"]["open_actions"],
            reg["Radiologist saturation"]["overdue_actions"]) == (3, 2, 1)
    assert reg["Radiologist saturation"]["next_due_date"] == dt.date(2025, 1, 5)
    assert reg["Network outage"]["actions"] == 0
    actions = [(a["action"], a["owner"], a["status"], a["overdue"]) for a in t["risks_actions"]]
    assert actions == [("Recruit two radiologists", "GHT", "done", False),
                       ("Overflow threshold to the provider", "ARS", "in_progress", True),
                       ("Monthly load review", "Medical coordination", "planned", False)]
    client.force_login(m.users["coord"])
    html = client.get("/dashboard/?start=2025-01-06&end=2025-01-12").content.decode()
    assert "Overflow threshold to the provider" in html and "Medical coordination" in html
