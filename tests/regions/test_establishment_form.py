"""An establishment's sub-specialties are edited as a list of words, not as raw JSON."""

from __future__ import annotations

from typing import Any

import pytest

from apps.core.forms import WordListField
from apps.regions.models import Establishment

pytestmark = pytest.mark.django_db


def test_word_list_field_shows_and_reads_words() -> None:
    field = WordListField(required=False)
    assert field.prepare_value(["neuro", "msk"]) == "neuro, msk" and field.prepare_value([]) == ""
    assert field.clean("neuro, msk ; paediatric") == ["neuro", "msk", "paediatric"]
    assert field.clean("") == [] and not field.has_changed([], "")


def test_the_establishment_page_shows_sub_specialties_as_words(demo: Any, client: Any) -> None:
    client.force_login(demo.users["coordinateur"])
    est = Establishment.objects.filter(territory__region=demo.region).first()
    Establishment.objects.filter(pk=est.pk).update(subspecialties=["neuro", "paediatric"])
    html = client.get(f"/admin/regions/establishment/{est.pk}/change/").content.decode()
    assert 'value="neuro, paediatric"' in html and "[&quot;neuro&quot;" not in html
    Establishment.objects.filter(pk=est.pk).update(subspecialties=[])
    html = client.get(f"/admin/regions/establishment/{est.pk}/change/").content.decode()
    assert "[]" not in html.split('name="subspecialties"')[1][:80]
