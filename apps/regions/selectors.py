"""Reads of the regional mesh. Other apps reach the mesh only through here and services."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.regions.calendar import PARIS, CalendarSpec
from apps.regions.models import (
    SERVICE_LEVEL_DEFAULTS,
    Agreement,
    AgreementStatus,
    DicomNode,
    Establishment,
    EstablishmentKind,
    Modality,
    Region,
    ServiceLevel,
)
from apps.regions.ultrasound import Centre, ReferralChoice, referral_choose


def region_calendar_spec(region: Region, *, department: str = "") -> CalendarSpec:
    """The region's PDS hours and extra closed days, with the public holidays of ``department``."""
    return CalendarSpec(
        weekday_night_start=region.weekday_night_start,
        weekday_night_end=region.weekday_night_end,
        saturday_start=region.saturday_start,
        department=department,
        extra_closed_days=frozenset(region.extra_closed_days.values_list("date", flat=True)),
    )


def site_calendar_spec(site: Establishment) -> CalendarSpec:
    """The PDS calendar of one establishment: its region's hours, its department's public holidays."""
    return region_calendar_spec(site.territory.region, department=site.department_code)


STAGE_KEYS = ("request_validation", "images_assigned", "assigned_acknowledged", "acknowledged_signed",
              "request_signed")


def service_levels(region_id: int) -> dict[str, dict[str, int]]:
    """The region's turnaround targets in minutes, urgency -> stage -> minutes (the defaults where the region set
    none). The dashboard, the worklist's colours and the overdue-report alert all read these."""
    out = {u: dict(stages) for u, stages in SERVICE_LEVEL_DEFAULTS.items()}
    for row in ServiceLevel.objects.filter(region_id=region_id).values("urgency", *STAGE_KEYS):
        out[row["urgency"]] = {k: row[k] for k in STAGE_KEYS}
    return out


def modality_for_dicom_code(code: str) -> Modality | None:
    """Map a DICOM Modality (0008,0060) value such as 'DX' to the catalogue entry ('XR')."""
    code = (code or "").strip().upper()
    for m in Modality.objects.all():
        if code == m.code or code in (m.dicom_codes or []):
            return m
    return None


def agreements_in_force(*, at: dt.datetime | None = None, during_pds: bool | None = None) -> QuerySet[Agreement]:
    """Signed agreements valid on ``at``'s day. ``during_pds=False`` (regular hours at the requesting site)
    leaves out the agreements restricted to PDS hours (``pds_only``); None: whatever the hour."""
    day = (at or timezone.now()).astimezone(PARIS).date()
    qs = Agreement.objects.filter(
        Q(valid_until__isnull=True) | Q(valid_until__gte=day), status=AgreementStatus.SIGNED, valid_from__lte=day
    )
    return qs.filter(pds_only=False) if during_pds is False else qs


def agreement_in_force(*, requesting_id: int, partner_id: int, modality_code: str,
                       at: dt.datetime | None = None) -> bool:
    if requesting_id == partner_id:
        return True  # a site reading its own images needs no convention
    return agreements_in_force(at=at).filter(
        requesting_id=requesting_id, partner_id=partner_id, modalities__code=modality_code
    ).exists()


def dicom_node_for(ae_title: str) -> DicomNode | None:
    return DicomNode.objects.select_related("establishment").filter(ae_title=ae_title, active=True).first()


def establishments_for_region(region_id: int) -> QuerySet[Establishment]:
    return Establishment.objects.filter(territory__region_id=region_id)


@dataclass(frozen=True)
class UltrasoundReferral:
    establishment_id: int
    name: str
    phone: str
    distance_km: float
    travel_minutes: int
    within_bound: bool
    paediatric: bool


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6371.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def _travel_minutes(site: Establishment, centre: Establishment, region: Region) -> tuple[float, int] | None:
    """Great-circle distance (km) and estimated road time: 1.3 x the distance at the region's configured speed."""
    if None in (site.latitude, site.longitude, centre.latitude, centre.longitude):
        return None
    km = _haversine_km(float(site.latitude), float(site.longitude),  # type: ignore[arg-type]
                       float(centre.latitude), float(centre.longitude))  # type: ignore[arg-type]
    return km, math.ceil(km * 1.3 / max(region.travel_speed_kmh, 1) * 60)


def _ultrasound_centres(site: Establishment) -> QuerySet[Establishment]:
    return establishments_for_region(site.territory.region_id).filter(kind=EstablishmentKind.ULTRASOUND_CENTRE,
                                                                      active=True)


def nearest_ultrasound_referrals(site: Establishment, *, paediatric: bool = False) -> list[UltrasoundReferral]:
    """Ultrasound referral centres of the site's region, nearest first, with estimated road time."""
    region = site.territory.region
    out: list[UltrasoundReferral] = []
    qs = _ultrasound_centres(site)
    if paediatric:
        qs = qs.filter(paediatric_ultrasound=True)
    for centre in qs:
        travel = _travel_minutes(site, centre, region)
        if travel is None:
            continue
        km, minutes = travel
        out.append(UltrasoundReferral(centre.pk, centre.name, centre.phone_24h, round(km, 1), minutes,
                                      minutes <= region.ultrasound_max_travel_minutes, centre.paediatric_ultrasound))
    return sorted(out, key=lambda r: r.travel_minutes)


def ultrasound_referral_for(site: Establishment, *, child: bool) -> ReferralChoice:
    """The ultrasound centre to send a patient of ``site`` to (the rule: ``apps.regions.ultrasound``)."""
    region = site.territory.region
    centres = []
    for centre in _ultrasound_centres(site):
        travel = _travel_minutes(site, centre, region)
        if travel is not None:
            centres.append(Centre(centre.pk, centre.name, centre.phone_24h, travel[1], ages=centre.ultrasound_ages,
                                  paediatric=centre.paediatric_ultrasound))
    return referral_choose(centres, child=child, bound_minutes=region.ultrasound_max_travel_minutes)


def dicom_senders_active() -> list[tuple[str, str]]:
    """The calling AE titles allowed to send, with their establishment (the run_platform banner)."""
    return [(n.ae_title, n.establishment.name)
            for n in DicomNode.objects.select_related("establishment").filter(active=True).order_by("ae_title")]
