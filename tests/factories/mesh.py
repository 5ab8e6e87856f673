"""A tiny isolated region (not the demo) for indicator tests with hand-computed expectations."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
_seq = itertools.count(1)


def paris(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=PARIS)


@dataclass
class Mesh:
    region: Any
    territories: dict[str, Any] = field(default_factory=dict)
    sites: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, Any] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)


def modalities() -> None:
    from apps.regions.models import Modality

    for code, label, eligible in (("CT", "Scanner", True), ("MR", "IRM", True), ("XR", "Radio", True),
                                  ("US", "Echographie", False)):
        Modality.objects.get_or_create(code=code, defaults={"label": label, "teleradiology_eligible": eligible})


def mesh_create(code: str = "TST") -> Mesh:
    from apps.regions.models import Establishment, Region, Territory

    modalities()
    region = Region.objects.create(code=code, name=f"Region {code}")
    m = Mesh(region=region)
    for t in ("T1", "T2"):
        m.territories[t] = Territory.objects.create(region=region, code=t, name=f"Territory {t}")
    for key, kind, terr, active in (("A", "requesting", "T1", True), ("B", "requesting", "T2", True),
                                    ("P", "pivot", "T1", True), ("Q", "provider", "T2", False)):
        m.sites[key] = Establishment.objects.create(
            name=f"Site {key} {code}", finess=f"{next(_seq):09d}", kind=kind, territory=m.territories[terr],
            active=active)
    return m


def user_create(m: Mesh, username: str, role: str, site: str | None = None, **extra: Any) -> Any:
    from apps.accounts.models import Membership, User

    u = User.objects.create(username=username, role=role, first_name=username.capitalize(), last_name="Test",
                            rpps="10000000009" if role in ("radiologist", "emergency_physician") else "",
                            **extra)
    if site:
        Membership.objects.create(user=u, establishment=m.sites[site])
    m.users[username] = u
    return u


def line_create(m: Mesh, name: str, kind: str, holder: str) -> Any:
    from apps.rosters.models import OnCallLine

    line = OnCallLine.objects.create(region=m.region, name=name, kind=kind)
    line.holders.set([m.sites[holder]])
    m.lines[name] = line
    return line


def case_create_raw(m: Mesh, site: str, modality: str, urgency: str, requested_at: dt.datetime,
                    **fields: Any) -> Any:
    """A case with explicit stage timestamps (bypasses the services: indicator fixtures only)."""
    from apps.worklist.models import Case

    return Case.objects.create(site=m.sites[site], modality_id=modality, urgency=urgency, requested_at=requested_at,
                               patient_birth_name="DOE", patient_first_names="Jane", patient_sex="F",
                               patient_birth_date=dt.date(1960, 1, 1), clinical_question="?", exam=modality,
                               **fields)
