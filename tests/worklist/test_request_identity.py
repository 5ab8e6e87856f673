"""The request form checks the identity (apps.worklist.identity) and says so next to the field and in a summary
that takes the focus; no sex is chosen in advance; the used name is shown wherever the patient is named."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import timezone

from apps.worklist.models import Case
from tests.factories.worklist import make_case

pytestmark = pytest.mark.django_db

INS_F_1955_08 = "255081416802538"


def _form(**overrides: Any) -> dict[str, Any]:
    data = {
        "idempotency_key": "k-id", "patient_birth_name": "MARTIN", "patient_first_names": "Jeanne",
        "patient_sex": "F", "patient_birth_date": "1955-08-14", "patient_ins": INS_F_1955_08,
        "patient_birth_place": "14168", "urgency": "urgent", "modality_code": "CT", "exam": "Scanner cérébral",
        "clinical_question": "Hématome ?", "pregnancy": "na", "patient_informed": "on",
    }
    data.update(overrides)
    return data


def test_no_sex_is_chosen_in_advance(demo: Any, login: Any) -> None:
    page = login("urgentiste").get("/worklist/request/new/").content.decode()
    select = re.search(r'<select name="patient_sex".*?</select>', page, flags=re.S)
    assert select is not None
    assert 'value="" selected' in select.group(0) and 'value="F" selected' not in select.group(0)
    resp = login("urgentiste").post("/worklist/request/new/", _form(patient_sex=""))
    assert "patient_sex" in resp.context["form"].errors and not Case.objects.exists()


@pytest.mark.parametrize(("change", "field"), [
    ({"patient_sex": "M"}, "patient_ins"),  # an INS of a woman for a man
    ({"patient_birth_date": "1948-03-02"}, "patient_ins"),  # year and month disagree
    ({"patient_birth_date": "2030-01-01", "patient_ins": ""}, "patient_birth_date"),
    ({"patient_birth_place": "1416"}, "patient_birth_place"),
])
def test_an_incoherent_identity_is_refused_next_to_the_field_and_in_a_focused_summary(
        demo: Any, login: Any, change: dict[str, Any], field: str) -> None:
    resp = login("urgentiste").post("/worklist/request/new/", _form(**change))
    assert resp.status_code == 200 and not Case.objects.exists()
    form = resp.context["form"]
    assert set(form.errors) == {field}
    html = resp.content.decode()
    summary = re.search(r'<div class="critical error-summary"[^>]*>.*?</div>', html, flags=re.S)
    assert summary is not None
    assert 'tabindex="-1"' in summary.group(0) and "data-focus-on-load" in summary.group(0)
    assert f'href="#id_{field}"' in summary.group(0) and form.errors[field][0] in html.replace("&#x27;", "'")
    # The same message sits next to the field.
    assert html.count(form.errors[field][0].replace("'", "&#x27;")) == 2


def test_a_coherent_identity_goes_through_and_the_date_input_stops_at_today(demo: Any, login: Any) -> None:
    client = login("urgentiste")
    page = client.get("/worklist/request/new/").content.decode()
    assert f'max="{timezone.localdate().isoformat()}"' in page and "error-summary" not in page
    resp = client.post("/worklist/request/new/", _form())
    assert resp.status_code == 302 and Case.objects.get().patient_ins == INS_F_1955_08


def test_the_used_name_is_shown_wherever_the_patient_is_named(demo: Any, login: Any) -> None:
    case = make_case(demo, patient_birth_name="MARTIN", patient_used_name="Dupont", patient_first_names="Jeanne",
                     patient_birth_date=dt.date(1955, 8, 14))
    assert case.patient_display == "MARTIN Jeanne, used name DUPONT (14/08/1955)"
    physician = login("urgentiste")
    assert "used name DUPONT" in physician.get(f"/worklist/c/{case.public_id}/").content.decode()
    assert "used name DUPONT" in physician.get("/worklist/site/").content.decode()
    plain = make_case(demo, patient_used_name="")
    assert "used name" not in plain.patient_display
