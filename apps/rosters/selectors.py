"""Reads of rosters: shifts covering an instant, who is on duty on a line, a user's lines, the weekly coverage
report, a radiologist's shifts. Only shifts and lines: the routing rules are routing's."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from apps.accounts.models import Membership
from apps.regions.calendar import PARIS, pds_periods
from apps.regions.models import Establishment, EstablishmentKind, Modality, Region
from apps.regions.selectors import agreements_in_force, region_calendar_spec
from apps.rosters.contracts import ContractHours, contract_spans
from apps.rosters.models import OnCallLine, ProviderQueue, Shift, ShiftRole


@dataclass(frozen=True)
class OnDuty:
    radiologist_id: int
    name: str
    phone: str
    line_id: int
    line_name: str
    line_phone: str
    role: str
    shift_kind: str
    shift_end: dt.datetime


def on_duty_from_shifts(shifts: QuerySet[Shift]) -> list[OnDuty]:
    """Who holds these shifts, ordered by line, role and radiologist."""
    return [OnDuty(s.radiologist_id, s.radiologist.display_name, s.radiologist.phone, s.line_id, s.line.name,
                   s.line.phone, s.role, s.kind, s.end)
            for s in shifts.select_related("radiologist", "line").order_by("line__name", "role", "radiologist_id")]


def on_duty_for_line(*, line_id: int, at: dt.datetime) -> list[OnDuty]:
    """Who is on duty on one line at ``at`` (the routing rules are not involved: see routing.selectors.on_duty)."""
    return on_duty_from_shifts(Shift.objects.filter(line_id=line_id, line__active=True, start__lte=at, end__gt=at))


def lines_for_user(*, user_id: int, at: dt.datetime) -> QuerySet[OnCallLine]:
    """Lines on which the user has a shift covering ``at`` (scopes the radiologist's worklist)."""
    return OnCallLine.objects.filter(shifts__radiologist_id=user_id, shifts__start__lte=at, shifts__end__gt=at,
                                     active=True).distinct()


def shifts_covering(*, at: dt.datetime) -> QuerySet[Shift]:
    return Shift.objects.filter(start__lte=at, end__gt=at, line__active=True)


def shifts_for_radiologist(*, user_id: int, since: dt.datetime | None = None) -> QuerySet[Shift]:
    qs = Shift.objects.filter(radiologist_id=user_id).select_related("line")
    if since is not None:
        qs = qs.filter(end__gt=since)
    return qs.order_by("start")


def ical_token(user_id: int) -> str:
    """Per-user secret for the iCal feed URL (derived from SECRET_KEY: rotating the key revokes every feed)."""
    return hmac.new(settings.SECRET_KEY.encode(), f"ical:{user_id}".encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Gap:
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class CoverageCell:
    site_id: int
    site_name: str
    modality: str
    period_label: str
    period_kind: str
    start: dt.datetime
    end: dt.datetime
    lines: tuple[str, ...]
    radiologists: tuple[str, ...]
    gaps: tuple[Gap, ...]

    @property
    def covered(self) -> bool:
        return not self.gaps


@dataclass(frozen=True)
class CoverageReport:
    region_id: int
    week_start: dt.date
    cells: tuple[CoverageCell, ...]

    @property
    def gaps(self) -> tuple[CoverageCell, ...]:
        return tuple(c for c in self.cells if c.gaps)


COVERAGE_STATES = ("covered", "partial", "uncovered")


def coverage_state(cell: CoverageCell) -> str:
    """covered: no gap; partial: some of the period is covered; uncovered: none of it."""
    if not cell.gaps:
        return "covered"
    uncovered = sum(((g.end - g.start) for g in cell.gaps), dt.timedelta())
    return "uncovered" if uncovered >= cell.end - cell.start else "partial"


def _uncovered(start: dt.datetime, end: dt.datetime, spans: list[tuple[dt.datetime, dt.datetime]]) -> list[Gap]:
    gaps, cursor = [], start
    for s, e in sorted(spans):
        if e <= cursor or s >= end:
            continue
        if s > cursor:
            gaps.append(Gap(cursor, min(s, end)))
        cursor = max(cursor, e)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append(Gap(cursor, end))
    return gaps


def employing_establishments(*, radiologist_ids: set[int]) -> dict[int, set[int]]:
    """Each radiologist's establishments (memberships), one query."""
    out: dict[int, set[int]] = {rid: set() for rid in radiologist_ids}
    for uid, est_id in Membership.objects.filter(user_id__in=radiologist_ids).values_list("user_id",
                                                                                          "establishment_id"):
        out[uid].add(est_id)
    return out


def _employers_by_line(line_info: list[tuple[OnCallLine, set[str], set[int], list[int]]],
                       shifts_by_line: dict[int, list[Shift]]) -> dict[tuple[int, int], set[int]]:
    """(line, radiologist) -> the establishments employing the radiologist for that line: their memberships
    among the line's holders, else all their memberships (routing's ``duty_candidates`` reads them the same)."""
    mine = employing_establishments(radiologist_ids={s.radiologist_id for ss in shifts_by_line.values() for s in ss})
    out: dict[tuple[int, int], set[int]] = {}
    for ln, _mods, _served, holders in line_info:
        for s in shifts_by_line.get(ln.pk, []):
            out[(ln.pk, s.radiologist_id)] = (mine[s.radiologist_id] & set(holders)) or mine[s.radiologist_id]
    return out


def coverage_report(*, region_id: int, week_start: dt.date) -> CoverageReport:
    """For each requesting site x teleradiology modality x PDS period of the 7 days from ``week_start``:
    the lines and radiologists (primary shifts, on lines serving the site, whose radiologist's employer has an
    agreement in force with the site, and that break no roster rule) that cover it, and the uncovered
    stretches (gaps)."""
    region = Region.objects.get(pk=region_id)
    modalities = list(Modality.objects.filter(teleradiology_eligible=True).values_list("code", flat=True))
    sites = list(Establishment.objects.filter(territory__region_id=region_id, kind=EstablishmentKind.REQUESTING,
                                              active=True).order_by("name"))
    # Each site's PDS periods follow its department's public holidays (Alsace-Moselle differs from its region).
    last_day = week_start + dt.timedelta(days=6)
    periods_by_department = {dep: pds_periods(week_start, last_day, region_calendar_spec(region, department=dep))
                             for dep in {s.department_code for s in sites}}
    every = [p for ps in periods_by_department.values() for p in ps]
    if not every:
        return CoverageReport(region_id, week_start, ())
    lo, hi = min(p.start for p in every), max(p.end for p in every)
    lines = list(OnCallLine.objects.filter(region_id=region_id, active=True)
                 .prefetch_related("modalities", "served_sites", "holders"))
    # A private provider's queue covers its contracted hours without shifts (it dispatches internally).
    queues = {q.line_id: contract_hours_of(q) for q in ProviderQueue.objects.filter(line__in=lines, active=True)}
    agreements: set[tuple[int, int, str]] = set()
    for a in agreements_in_force(at=lo).filter(requesting__in=sites).prefetch_related("modalities"):
        for m in a.modalities.all():
            agreements.add((a.requesting_id, a.partner_id, m.code))
    shifts_by_line: dict[int, list[Shift]] = {}
    for s in (Shift.objects.filter(line__region_id=region_id, line__active=True, end__gt=lo, start__lt=hi,
                                   role__in=[ShiftRole.PRIMARY]).select_related("radiologist")):
        if not s.flags:  # a shift that breaks a roster rule is never offered a case: it covers nothing
            shifts_by_line.setdefault(s.line_id, []).append(s)
    line_info = [(ln, {m.code for m in ln.modalities.all()}, {s.pk for s in ln.served_sites.all()},
                  [h.pk for h in ln.holders.all()]) for ln in lines]
    employers = _employers_by_line(line_info, shifts_by_line)
    cells: list[CoverageCell] = []
    for site in sites:
        for code in modalities:
            serving = [ln for ln, mods, served, holders in line_info
                       if code in mods and site.pk in served
                       and any(h == site.pk or (site.pk, h, code) in agreements for h in holders)]
            for p in periods_by_department[site.department_code]:
                spans, names, people = [], [], []
                for ln in serving:
                    # Agreement first, per radiologist: their employer, not only some holder of the line.
                    on = [s for s in shifts_by_line.get(ln.pk, []) if s.start < p.end and s.end > p.start
                          and any(e == site.pk or (site.pk, e, code) in agreements
                                  for e in employers[(ln.pk, s.radiologist_id)])]
                    if on:
                        names.append(ln.name)
                        spans += [(s.start, s.end) for s in on]
                        people += [s.radiologist.display_name for s in on]
                    if ln.pk in queues:
                        holidays = frozenset({p.start.astimezone(PARIS).date()}) if p.kind == "holiday" else frozenset()
                        contracted = contract_spans(queues[ln.pk], p.start, p.end, holidays=holidays)
                        if contracted:
                            names += [] if ln.name in names else [ln.name]
                            spans += contracted
                            people.append(f"{ln.name} ({queues[ln.pk].label})")
                cells.append(CoverageCell(site.pk, site.name, code, p.label, p.kind, p.start, p.end, tuple(names),
                                          tuple(dict.fromkeys(people)), tuple(_uncovered(p.start, p.end, spans))))
    return CoverageReport(region_id, week_start, tuple(cells))


@dataclass(frozen=True)
class CalendarShift:
    shift_id: int
    radiologist: str
    start: dt.datetime
    end: dt.datetime
    kind: str
    role: str
    role_label: str
    flags: tuple[str, ...]  # the roster checks' stored messages (apps.rosters.texts translates them)

    @property
    def conflict(self) -> bool:
        return bool(self.flags)


@dataclass(frozen=True)
class CalendarRow:
    line_id: int
    line_name: str
    days: tuple[tuple[CalendarShift, ...], ...]  # one entry per day of the calendar, shifts by start


@dataclass(frozen=True)
class RosterCalendar:
    days: tuple[dt.date, ...]
    rows: tuple[CalendarRow, ...]

    @property
    def conflicts(self) -> tuple[tuple[str, CalendarShift], ...]:
        """(line name, shift) for every shift that breaks a roster rule, in time order."""
        found = [(r.line_name, s) for r in self.rows for day in r.days for s in day if s.conflict]
        return tuple(sorted(found, key=lambda x: (x[1].start, x[0])))


def roster_calendar(*, region_id: int, first_day: dt.date, last_day: dt.date,
                    line_id: int | None = None) -> RosterCalendar:
    """The region's active lines (or one of them) by day, from ``first_day`` to ``last_day`` (Paris days): each
    shift on the day it starts, with the warnings the roster checks left on it. One query for the shifts."""
    days = tuple(first_day + dt.timedelta(days=i) for i in range((last_day - first_day).days + 1))
    lines = OnCallLine.objects.filter(region_id=region_id, active=True).order_by("name")
    if line_id is not None:
        lines = lines.filter(pk=line_id)
    lo = dt.datetime.combine(first_day, dt.time(0), tzinfo=PARIS)
    hi = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0), tzinfo=PARIS)
    by_cell: dict[tuple[int, dt.date], list[CalendarShift]] = {}
    for s in (Shift.objects.filter(line__in=lines, start__gte=lo, start__lt=hi)
              .select_related("radiologist").order_by("start", "role", "radiologist__last_name")):
        flags = tuple(str(f.get("message", "")) for f in (s.flags or []) if isinstance(f, dict))
        by_cell.setdefault((s.line_id, s.start.astimezone(PARIS).date()), []).append(
            CalendarShift(s.pk, s.radiologist.display_name, s.start, s.end, s.kind, s.role, s.get_role_display(),
                          flags))
    rows = tuple(CalendarRow(ln.pk, ln.name, tuple(tuple(by_cell.get((ln.pk, d), ())) for d in days))
                 for ln in lines)
    return RosterCalendar(days, rows)


def contract_hours_of(queue: ProviderQueue) -> ContractHours:
    return ContractHours(queue.weekday_start, queue.weekday_end, queue.weekends, queue.holidays)


@dataclass(frozen=True)
class AgreementRow:
    requesting: str
    partner: str
    modalities: tuple[str, ...]
    pds_only: bool
    valid_until: dt.date | None


def agreements_in_force_for_region(*, region_id: int, at: dt.datetime) -> list[AgreementRow]:
    """The agreements in force in the region at ``at``, with what restricts them (modalities, PDS hours only):
    what the coverage page shows beside the cells (routing applies the same restrictions)."""
    qs = (agreements_in_force(at=at).filter(requesting__territory__region_id=region_id)
          .select_related("requesting", "partner").prefetch_related("modalities")
          .order_by("requesting__name", "partner__name"))
    return [AgreementRow(a.requesting.name, a.partner.name, tuple(sorted(m.code for m in a.modalities.all())),
                         a.pds_only, a.valid_until) for a in qs]


def provider_queues_for_region(*, region_id: int) -> list[tuple[ProviderQueue, ContractHours]]:
    """The active provider queues of the region with their contracted hours."""
    return [(q, contract_hours_of(q)) for q in ProviderQueue.objects.filter(line__region_id=region_id, active=True)
            .select_related("line").order_by("line__name")]
