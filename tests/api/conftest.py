"""Personas for API tests: two hospitals of one small region, each with a RIS integration key."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

_seq = itertools.count(1)


@dataclass
class ApiWorld:
    region: Any
    site_a: Any
    site_b: Any
    keys: dict[str, tuple[Any, str]] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)

    def client(self, key_name: str | None = None, *, header: str = "bearer") -> APIClient:
        c = APIClient()
        if key_name:
            raw = self.keys[key_name][1]
            if header == "bearer":
                c.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
            else:
                c.credentials(HTTP_X_API_KEY=raw)
        return c


def pacs_client(establishment: Any) -> Client:
    """The establishment's PACS reading by DICOMweb: a read-only API key of the establishment as a bearer token."""
    from apps.api.services import api_key_create

    _, raw = api_key_create(name="pacs", establishment_id=establishment.pk, scope="read")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def world_create() -> ApiWorld:
    from apps.accounts.models import Membership, User
    from apps.api.services import api_key_create
    from apps.regions.models import Establishment, Modality, Region, Territory

    for code, label, eligible in (("CT", "Scanner", True), ("MR", "IRM", True), ("XR", "Radiographie", True),
                                  ("US", "Echographie", False)):
        Modality.objects.get_or_create(code=code, defaults={"label": label, "teleradiology_eligible": eligible,
                                                            "dicom_codes": [code]})
    n = next(_seq)
    region = Region.objects.create(code=f"API{n}", name=f"Region API {n}")
    terr = Territory.objects.create(region=region, code=f"T{n}", name="Territoire")
    a = Establishment.objects.create(name="CH Alpha", finess=f"18{n:07d}", kind="requesting", territory=terr,
                                     city="Vierzon")
    b = Establishment.objects.create(name="CH Beta", finess=f"41{n:07d}", kind="requesting", territory=terr,
                                     city="Blois")
    w = ApiWorld(region=region, site_a=a, site_b=b)
    w.keys["a_rw"] = api_key_create(name="RIS Alpha", establishment_id=a.pk, scope="read_write")
    w.keys["a_ro"] = api_key_create(name="RIS Alpha reader", establishment_id=a.pk, scope="read")
    w.keys["b_rw"] = api_key_create(name="RIS Beta", establishment_id=b.pk, scope="read_write")
    radiologist = User.objects.create(username=f"radio{n}", role="radiologist", first_name="Rita", last_name="Radio",
                                      rpps="10000000009", birth_date=dt.date(1975, 1, 1), region=region)
    physician = User.objects.create(username=f"urg{n}", role="emergency_physician", first_name="Ugo",
                                    last_name="Urgent", rpps="10000000009", region=region)
    Membership.objects.create(user=physician, establishment=a)
    w.users.update(radiologist=radiologist, physician=physician)
    return w


@pytest.fixture
def world(db: Any) -> ApiWorld:
    return world_create()


REQUEST_BODY: dict[str, Any] = {
    "patient_birth_name": "MARTIN",
    "patient_first_names": "Jeanne",
    "patient_sex": "F",
    "patient_birth_date": "1948-03-02",
    "local_patient_id": "IPP-1234",
    "clinical_question": "Hématome sous-dural ?",
    "clinical_context": "Chute, sous anticoagulants",
    "modality": "CT",
    "exam": "Scanner cérébral sans injection",
    "urgency": "vital",
    "patient_informed": True,
    "accession_number": "ACC-0001",
}


def request_create(w: ApiWorld, key: str = "a_rw", **changes: Any) -> dict[str, Any]:
    resp = w.client(key).post("/api/v1/requests/", {**REQUEST_BODY, **changes}, format="json")
    assert resp.status_code == 201, resp.content
    return resp.json()


def report_sign(case: Any, author: Any, *, addendum: str = "") -> Any:
    """Stand-in for the worklist's signing service (owned by another engineer): a signed report + events."""
    from django.utils import timezone

    from apps.worklist.models import Addendum, Case, CaseEventKind, CaseStatus, Report
    from apps.worklist.services import case_event_add

    now = timezone.now()
    report = Report.objects.create(case=case, author=author, signed_by=author, status="signed", signed_at=now,
                                   indication="Chute", technique="Acquisition hélicoïdale sans injection",
                                   findings="Pas d'hématome.", conclusion="Pas de lésion hémorragique.")
    Case.objects.filter(pk=case.pk).update(status=CaseStatus.REPORTED, signed_at=now)
    case.refresh_from_db()
    case_event_add(case=case, kind=CaseEventKind.REPORT_SIGNED, message="Report signed", actor_id=author.pk)
    if addendum:
        Addendum.objects.create(report=report, text=addendum, author=author, signed_at=timezone.now())
        case_event_add(case=case, kind=CaseEventKind.ADDENDUM, message="Addendum signed", actor_id=author.pk)
    return report
