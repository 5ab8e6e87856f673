"""Where an ultrasound patient is sent: the nearest suitable referral centre within the regional bound. A pure rule.

Ultrasound is never read remotely (the radiologist holds the probe): the request is redirected. DOMAIN.md
(from seed 001): "redirected to an ultrasound referral centre reachable within 45 minutes, or a paediatric
ultrasound pole". The seed's two regional answers are one referral centre per territory within 45 minutes of
every place patients are received (Pays de la Loire), and paediatric poles to which paediatric ultrasound
converges (Lorraine). So:

- *suitable* = the centre accepts the patient's age group (``Establishment.ultrasound_ages``: adults and
  children, adults only, children only). A general emergency ultrasound centre takes children unless the
  region says otherwise; a paediatric pole is one more option for a child, not the only one.
- the choice is the nearest suitable centre within the bound (the region's ``ultrasound_max_travel_minutes``,
  45 by default); for a child, a paediatric pole wins a tie. An 8-year-old 38 minutes from a general centre
  and 139 from the paediatric pole goes to the general centre.
- when no suitable centre is within the bound, the nearest suitable one is named with a warning
  (``BEYOND_BOUND``); when none accepts the patient's age group, none is named (``NONE_SUITABLE``).
- for a child sent to a general centre, the nearest paediatric pole is given as the alternative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ALL_AGES = "all"
ADULTS = "adults"
CHILDREN = "children"
CHILD_UNDER_YEARS = 18  # paediatrics: under 18 (the age group a centre may or may not accept)

BEYOND_BOUND = "beyond_bound"
NONE_SUITABLE = "none_suitable"


@dataclass(frozen=True)
class Centre:
    establishment_id: int
    name: str
    phone: str
    travel_minutes: int
    ages: str = ALL_AGES  # all | adults | children
    paediatric: bool = False  # a paediatric ultrasound pole


@dataclass(frozen=True)
class ReferralChoice:
    centre: Centre | None
    within_bound: bool
    warning: str = ""  # "" | beyond_bound | none_suitable
    alternative: Centre | None = None  # for a child sent to a general centre: the nearest paediatric pole


def accepts(centre: Centre, *, child: bool) -> bool:
    return centre.ages == ALL_AGES or centre.ages == (CHILDREN if child else ADULTS)


def referral_choose(centres: Sequence[Centre], *, child: bool, bound_minutes: int) -> ReferralChoice:
    """The centre to send the patient to (see the module's docstring)."""
    suitable = sorted((c for c in centres if accepts(c, child=child)),
                      key=lambda c: (c.travel_minutes, not (child and c.paediatric), c.name))
    if not suitable:
        return ReferralChoice(None, within_bound=False, warning=NONE_SUITABLE)
    within = [c for c in suitable if c.travel_minutes <= bound_minutes]
    chosen = within[0] if within else suitable[0]
    alternative = None
    if child and not chosen.paediatric:
        alternative = next((c for c in suitable if c.paediatric), None)
    return ReferralChoice(chosen, within_bound=bool(within), warning="" if within else BEYOND_BOUND,
                          alternative=alternative)
