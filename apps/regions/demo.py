"""Load the demo region from ``fixtures/demo_region.json``. Idempotent: a second run changes nothing.

Other apps add their part of the demo (accounts, rosters, routing rules, sample cases)
with a module ``apps.<app>.demo`` exposing ``load(spec, ctx)``; they are
called in the order of DEMO_EXTENSIONS, each after the mesh exists (imported by name: regions sits
below them and imports none of them).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

from apps.regions.models import (
    SERVICE_LEVEL_DEFAULTS,
    Agreement,
    DicomNode,
    Establishment,
    ImagingDevice,
    Modality,
    PoolingZone,
    Region,
    ServiceLevel,
    Territory,
)

if TYPE_CHECKING:
    from apps.accounts.models import User

DEMO_FILE = Path(settings.BASE_DIR) / "fixtures" / "demo_region.json"
DEMO_EXTENSIONS = ["apps.accounts.demo", "apps.rosters.demo", "apps.routing.demo", "apps.worklist.demo", "apps.dashboards.demo"]


@dataclass
class DemoContext:
    region: Region
    establishments: dict[str, Establishment] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)

    def count(self, what: str, created: bool) -> None:
        if created:
            self.created[what] = self.created.get(what, 0) + 1


def _date(v: str | None) -> dt.date | None:
    return dt.date.fromisoformat(v) if v else None


@transaction.atomic
def demo_region_load(path: Path = DEMO_FILE) -> DemoContext:
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    r = spec["region"]
    region, created = Region.objects.get_or_create(
        code=r["code"], defaults={"name": r["name"], "max_on_calls_per_month": r["max_on_calls_per_month"]})
    ctx = DemoContext(region=region)
    ctx.count("regions", created)
    for urgency, stages in SERVICE_LEVEL_DEFAULTS.items():
        ServiceLevel.objects.get_or_create(region=region, urgency=urgency, defaults=stages)
    for m in spec["modalities"]:
        _, c = Modality.objects.get_or_create(code=m["code"], defaults={
            "label": m["label"], "dicom_codes": m["dicom"], "teleradiology_eligible": m["eligible"],
            "weight": m["weight"]})
        ctx.count("modalities", c)
    territories = {}
    for t in spec["territories"]:
        territories[t["code"]], c = Territory.objects.get_or_create(region=region, code=t["code"],
                                                                    defaults={"name": t["name"]})
        ctx.count("territories", c)
    for z in spec["pooling_zones"]:
        zone, c = PoolingZone.objects.get_or_create(region=region, name=z["name"])
        if c:
            zone.territories.set([territories[code] for code in z["territories"]])
        ctx.count("pooling_zones", c)
    for e in spec["establishments"]:
        est, c = Establishment.objects.get_or_create(finess=e["finess"], defaults={
            "name": e["name"], "kind": e["kind"], "is_public": e["is_public"], "territory": territories[e["territory"]],
            "city": e["city"], "latitude": e["lat"], "longitude": e["lon"], "phone_24h": e["phone"],
            "subspecialties": e.get("subspecialties", []), "paediatric_ultrasound": e.get("paediatric_us", False),
            "ultrasound_ages": e.get("us_ages", "all")})
        ctx.count("establishments", c)
        ctx.establishments[e["key"]] = est
        if c:
            for code in e.get("devices", []):
                ImagingDevice.objects.create(establishment=est, modality_id=code, name=f"{code} {e['city']}")
        if e.get("ae"):
            _, c = DicomNode.objects.get_or_create(ae_title=e["ae"], defaults={
                "establishment": est, "allowed_hosts": "127.0.0.1/32,::1/128",
                "description": "Demo sender on this machine"})
            ctx.count("dicom_nodes", c)
        if e.get("pacs"):
            # The site's PACS for priors (query/retrieve), left disabled: tick it in the admin once a PACS (e.g. an
            # Orthanc whose DicomAet is this AE title) listens on this port and knows the gateway (README).
            _, c = DicomNode.objects.get_or_create(ae_title=e["pacs"]["ae"], defaults={
                "establishment": est, "allowed_hosts": "127.0.0.1/32,::1/128", "qr_enabled": False,
                "qr_ae_title": e["pacs"]["ae"], "qr_host": "127.0.0.1", "qr_port": e["pacs"]["port"],
                "description": "Demo site PACS (query/retrieve of priors, disabled)"})
            ctx.count("dicom_nodes", c)
    for a in spec["agreements"]:
        ag, c = Agreement.objects.get_or_create(
            requesting=ctx.establishments[a["requesting"]], partner=ctx.establishments[a["partner"]],
            valid_from=dt.date.fromisoformat(a["valid_from"]),  # required: the column is NOT NULL
            defaults={"valid_until": _date(a["valid_until"]), "status": a["status"], "signed_on": _date(a["signed_on"]),
                      # Restricted to PDS hours only where the spec says so: the demo routes around the clock.
                      "pds_only": a.get("pds_only", False)})
        if c:
            ag.modalities.set(a["modalities"])
        ctx.count("agreements", c)
    for module_name in DEMO_EXTENSIONS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.load(spec, ctx)
    return ctx

