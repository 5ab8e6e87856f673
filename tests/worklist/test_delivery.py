"""Issue 18, point 9: the report's delivery and read receipts, the radiographer's acquisition and the
physician's confirmation of a critical finding call, as case events and in the tele-act record."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.worklist import services
from apps.worklist.models import Case, CaseEvent, CriticalFindingCall, ReportReceipt
from tests.factories.worklist import make_case

pytestmark = pytest.mark.django_db


def _signed(demo: Any, *, critical: bool = False) -> Case:
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    radio = demo.users["radiologue"]
    services.case_claim(case_id=case.pk, user=radio)
    services.report_draft_save(case_id=case.pk, user=radio, critical_finding=critical,
                               fields={"indication": "Fall", "findings": "Bleed" if critical else "Normal.",
                                       "conclusion": "Subdural haematoma" if critical else "Normal."})
    if critical:
        services.critical_call_log(case_id=case.pk, user=radio, physician_name="Dr Fontaine", acknowledged=True)
    services.report_sign(case_id=case.pk, user=radio)
    case.refresh_from_db()
    return case


def _kinds(case: Case) -> list[str]:
    return list(CaseEvent.objects.filter(case=case).order_by("pk").values_list("kind", flat=True))


def test_physician_reading_the_report_is_recorded_once_per_channel_and_reaches_the_record(demo: Any,
                                                                                          login: Any) -> None:
    case = _signed(demo)
    base = f"/worklist/c/{case.public_id}"
    # The radiologist and the coordinator reading the signed report deliver nothing.
    assert login("radiologue").get(f"{base}/").status_code == 200
    assert login("coordinateur").get(f"{base}/report.pdf").status_code == 200
    case.refresh_from_db()
    assert case.delivered_at is None and "delivered" not in _kinds(case)

    phys = login("urgentiste")
    assert phys.get(f"{base}/").status_code == 200
    case.refresh_from_db()
    assert case.delivered_at is not None
    assert _kinds(case).count("delivered") == 1 and _kinds(case).count("report_read") == 1
    # Reloading and the live poll add nothing; the PDF is a second channel: one more read, no second delivery.
    phys.get(f"{base}/")
    phys.get(f"{base}/live", {"v": "old"})
    assert _kinds(case).count("report_read") == 1
    assert phys.get(f"{base}/report.pdf").status_code == 200
    assert _kinds(case).count("delivered") == 1 and _kinds(case).count("report_read") == 2
    assert set(ReportReceipt.objects.filter(case=case).values_list("channel", flat=True)) == {"web", "pdf"}
    read = CaseEvent.objects.filter(case=case, kind="report_read").first()
    assert read is not None and read.actor_id == demo.users["urgentiste"].pk

    from apps.traceability.selectors import teleact_record_build

    doc = teleact_record_build(Case.objects.get(pk=case.pk), for_export=False)
    acts = {a["act"]: a for a in doc["acts"]}
    assert acts["delivery"]["channel"] == "web" and acts["delivery"]["by"]["name"] == "Dr Lucie Fontaine"
    assert [a["channel"] for a in doc["acts"] if a["act"] == "report_read"] == ["web", "pdf"]
    assert any(p["role"] == "report_reader" for p in doc["professionals"])
    page = phys.get(f"/traceability/cases/{case.public_id}/record/").content.decode()
    assert "Report delivered to the requesting site" in page and "Report read at the requesting site" in page


def test_the_ris_fetching_the_report_through_the_api_is_the_delivery(demo: Any) -> None:
    from apps.api.services import api_key_create

    case = _signed(demo)
    _key, raw = api_key_create(name="RIS Vierzon", establishment_id=demo.establishments["vierzon"].pk,
                               scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    for _ in range(2):
        assert client.get(f"/api/v1/requests/{case.public_id}/report/").status_code == 200
    assert client.get(f"/api/v1/requests/{case.public_id}/report/pdf/").status_code == 200
    case.refresh_from_db()
    assert case.delivered_at is not None
    assert _kinds(case).count("delivered") == 1 and "report_read" not in _kinds(case)  # a RIS is not a reader
    receipt = ReportReceipt.objects.get(case=case)
    assert receipt.channel == "api" and receipt.reader_label == "RIS Vierzon" and receipt.reader is None
    # Another site's key sees nothing and delivers nothing.
    _other, raw_b = api_key_create(name="RIS Blois", establishment_id=demo.establishments["blois"].pk, scope="read")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_b}")
    assert other.get(f"/api/v1/requests/{case.public_id}/report/").status_code == 404
    assert ReportReceipt.objects.filter(case=case).count() == 1


def test_radiographer_logs_the_acquisition_and_is_in_the_record(demo: Any, login: Any) -> None:
    case = make_case(demo, status="accepted")
    base = f"/worklist/c/{case.public_id}"
    manip = login("manip")
    page = manip.get(f"{base}/")
    assert b'id="acquisition-form"' in page.content
    resp = manip.post(f"{base}/do/acquisition", {}, HTTP_ACCEPT="application/json")
    assert resp.status_code == 200 and resp.json()["ok"], resp.content
    case.refresh_from_db()
    assert case.radiographer_id == demo.users["manip"].pk and case.acquired_at is not None
    assert _kinds(case).count("acquired") == 1
    # Again: nothing new. A radiologist cannot log it (the matrix), nor name a radiographer of another site.
    manip.post(f"{base}/do/acquisition", {})
    assert _kinds(case).count("acquired") == 1
    assert login("radiologue").post(f"{base}/do/acquisition", {}).status_code == 403
    other = make_case(demo, status="accepted")
    bad = login("urgentiste").post(f"/worklist/c/{other.public_id}/do/acquisition",
                                   {"radiographer": demo.users["urgentiste"].pk}, HTTP_ACCEPT="application/json")
    assert bad.status_code == 400
    ok = login("urgentiste").post(f"/worklist/c/{other.public_id}/do/acquisition",
                                  {"radiographer": demo.users["manip"].pk}, HTTP_ACCEPT="application/json")
    assert ok.json()["ok"]
    assert "Performed by Yann Le Goff" in login("urgentiste").get(f"/worklist/c/{other.public_id}/").content.decode()

    from apps.traceability.selectors import teleact_record_build

    doc = teleact_record_build(Case.objects.get(pk=case.pk), for_export=False)
    acquisition = [a for a in doc["acts"] if a["act"] == "acquisition"]
    assert acquisition and acquisition[0]["by"]["name"] == demo.users["manip"].display_name
    assert any(p["role"] == "radiographer" for p in doc["professionals"])


def test_physician_confirms_the_critical_finding_call(demo: Any, login: Any) -> None:
    case = _signed(demo, critical=True)
    call = CriticalFindingCall.objects.get(case=case)
    base = f"/worklist/c/{case.public_id}"
    phys = login("urgentiste")
    page = phys.get(f"{base}/").content.decode()
    assert f'id="critical-confirm-{call.pk}"' in page
    # The radiologist cannot confirm in the physician's place.
    assert login("radiologue").post(f"{base}/do/critical_confirm", {"call": call.pk}).status_code == 403
    resp = phys.post(f"{base}/do/critical_confirm", {"call": call.pk}, HTTP_ACCEPT="application/json")
    assert resp.status_code == 200 and resp.json()["ok"]
    call.refresh_from_db()
    assert call.confirmed_at is not None and call.confirmed_by_id == demo.users["urgentiste"].pk
    again = phys.post(f"{base}/do/critical_confirm", {"call": call.pk}, HTTP_ACCEPT="application/json")
    assert again.status_code == 409
    assert _kinds(case).count("critical_confirmed") == 1
    assert "Receipt confirmed by Dr Lucie Fontaine" in login("radiologue").get(f"{base}/").content.decode()

    from apps.traceability.selectors import teleact_record_build

    doc = teleact_record_build(Case.objects.get(pk=case.pk), for_export=False)
    confirmed = [a for a in doc["acts"] if a["act"] == "critical_finding_confirmed"]
    assert confirmed and confirmed[0]["by"]["name"] == "Dr Lucie Fontaine"
