"""The ultrasound referral rule (issue 18, point 6): the nearest suitable centre within the bound, a warning when
none is, never a centre that does not take the patient's age group."""

from __future__ import annotations

from typing import Any

import pytest

from apps.regions.models import Establishment
from apps.regions.selectors import ultrasound_referral_for
from apps.regions.ultrasound import BEYOND_BOUND, NONE_SUITABLE, Centre, referral_choose

ADULT_38 = Centre(1, "Adult unit", "01", 38)
PAED_139 = Centre(2, "Paediatric pole", "02", 139, ages="children", paediatric=True)
PAED_30 = Centre(3, "Near paediatric pole", "03", 30, ages="children", paediatric=True)
ADULTS_ONLY_20 = Centre(4, "Adults-only unit", "04", 20, ages="adults")
GENERAL_60 = Centre(5, "Far general unit", "05", 60)
MIXED_POLE_38 = Centre(6, "Mixed pole", "06", 38, paediatric=True)


@pytest.mark.parametrize(("centres", "child", "chosen", "within", "warning", "alternative"), [
    # The case: an 8-year-old goes to the general unit 38 min away, not the paediatric pole 139 min away;
    # the pole is named as the alternative.
    ((ADULT_38, PAED_139), True, 1, True, "", 2),
    ((ADULT_38, PAED_139), False, 1, True, "", None),
    # A paediatric pole within the bound and nearer wins for a child; an adult never goes to a children-only pole.
    ((ADULT_38, PAED_30), True, 3, True, "", None),
    ((ADULT_38, PAED_30), False, 1, True, "", None),
    # An adults-only unit is not suitable for a child, however near.
    ((ADULTS_ONLY_20, ADULT_38), True, 1, True, "", None),
    ((ADULTS_ONLY_20, ADULT_38), False, 4, True, "", None),
    # At equal time a paediatric pole wins for a child.
    ((ADULT_38, MIXED_POLE_38), True, 6, True, "", None),
    # Nothing suitable within 45 min: the nearest suitable one, with a warning.
    ((GENERAL_60, PAED_139), False, 5, False, BEYOND_BOUND, None),
    ((ADULTS_ONLY_20, PAED_139), True, 2, False, BEYOND_BOUND, None),
    # Nothing suitable at all.
    ((ADULTS_ONLY_20,), True, None, False, NONE_SUITABLE, None),
    ((), False, None, False, NONE_SUITABLE, None),
])
def test_referral_choice(centres: tuple[Centre, ...], child: bool, chosen: int | None, within: bool, warning: str,
                         alternative: int | None) -> None:
    choice = referral_choose(centres, child=child, bound_minutes=45)
    assert (choice.centre.establishment_id if choice.centre else None) == chosen
    assert choice.within_bound is within and choice.warning == warning
    assert (choice.alternative.establishment_id if choice.alternative else None) == alternative


@pytest.mark.django_db
def test_demo_child_at_vierzon_goes_to_bourges_not_to_the_paediatric_pole(demo: Any) -> None:
    vierzon = Establishment.objects.select_related("territory__region").get(pk=demo.establishments["vierzon"].pk)
    choice = ultrasound_referral_for(vierzon, child=True)
    assert choice.centre is not None and "Bourges" in choice.centre.name and choice.within_bound
    assert choice.centre.travel_minutes <= 45
    assert choice.alternative is not None and "pédiatrique" in choice.alternative.name
    assert choice.alternative.travel_minutes > 45


@pytest.mark.django_db
def test_demo_adult_is_never_sent_to_the_children_only_pole(demo: Any) -> None:
    chinon = Establishment.objects.select_related("territory__region").get(pk=demo.establishments["chinon"].pk)
    assert "pédiatrique" in ultrasound_referral_for(chinon, child=True).centre.name  # type: ignore[union-attr]
    adult = ultrasound_referral_for(chinon, child=False)
    assert adult.centre is not None and "pédiatrique" not in adult.centre.name


@pytest.mark.django_db
def test_demo_far_site_gets_a_warning(demo: Any) -> None:
    nogent = Establishment.objects.select_related("territory__region").get(pk=demo.establishments["nogent"].pk)
    choice = ultrasound_referral_for(nogent, child=False)
    assert choice.centre is not None and not choice.within_bound and choice.warning == BEYOND_BOUND
