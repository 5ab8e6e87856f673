"""Writes on rosters: shifts are created through the roster checks; a month is imported from CSV all-or-nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from apps.accounts.models import Role, User
from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, NotFoundError, PermissionDeniedError
from apps.regions.calendar import PARIS
from apps.rosters.checks import INTERVENTION, RadiologistFacts, ShiftFacts, Violation, check_shift
from apps.rosters.models import Intervention, OnCallLine, Shift, ShiftKind, ShiftRole
from apps.rosters.texts import roster_text


def radiologist_facts(user: User) -> RadiologistFacts:
    return RadiologistFacts(user.pk, user.display_name, user.birth_date, user.volunteers_over_60,
                            frozenset(user.authorised_sites.values_list("pk", flat=True)))


def _shift_facts(s: Shift) -> ShiftFacts:
    return ShiftFacts(s.start, s.end, s.kind, s.line_id, s.pk)


def work_facts(*, radiologist_id: int, since: dt.datetime, until: dt.datetime) -> list[ShiftFacts]:
    """The radiologist's shifts and recorded astreinte interventions between ``since`` and ``until``."""
    facts = [_shift_facts(s) for s in Shift.objects.filter(radiologist_id=radiologist_id, end__gt=since,
                                                           start__lt=until)]
    facts += [ShiftFacts(i.start, i.end, INTERVENTION, i.shift.line_id)
              for i in Intervention.objects.filter(shift__radiologist_id=radiologist_id, end__gt=since,
                                                   start__lt=until).select_related("shift")]
    return facts


def shift_violations(*, line: OnCallLine, radiologist: User, start: dt.datetime, end: dt.datetime, kind: str,
                     shift_id: int | None = None, extra_others: list[ShiftFacts] | None = None) -> list[Violation]:
    """Roster checks for a (new or changed) shift against the radiologist's stored shifts and interventions."""
    others = work_facts(radiologist_id=radiologist.pk, since=start - dt.timedelta(days=40),
                        until=end + dt.timedelta(days=40))
    others += extra_others or []
    served = dict(line.served_sites.values_list("pk", "name"))
    return check_shift(ShiftFacts(start, end, kind, line.pk, shift_id), radiologist_facts(radiologist),
                       others=others, served_sites=served, max_per_month=line.region.max_on_calls_per_month)


@transaction.atomic
def shift_create(*, line: OnCallLine, radiologist: User, start: dt.datetime, end: dt.datetime,
                 kind: str = ShiftKind.GARDE, role: str = ShiftRole.PRIMARY, allow_violations: bool = False) -> Shift:
    """Create a shift. Violations refuse it (ApplicationError listing them) unless ``allow_violations``, in
    which case they are stored as the shift's flags for the coordinator to see."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ApplicationError(_("Shift times must carry a timezone."))
    if end <= start:
        raise ApplicationError(_("A shift ends after it starts."))
    if radiologist.role != Role.RADIOLOGIST:
        raise ApplicationError(_("%(who)s is not a radiologist.") % {"who": radiologist})
    violations = shift_violations(line=line, radiologist=radiologist, start=start, end=end, kind=kind)
    if violations and not allow_violations:
        raise ApplicationError(" ".join(roster_text(v.message) for v in violations), code="roster_check",
                               extra={"violations": [v.code for v in violations]})
    shift = Shift.objects.create(line=line, radiologist=radiologist, start=start, end=end, kind=kind, role=role,
                                 flags=[{"code": v.code, "message": v.message} for v in violations])
    audit_record(action="create", obj=shift, details={"line": line.pk, "flags": [v.code for v in violations]})
    return shift


INTERVENTION_MAX = dt.timedelta(hours=12)


def _may_record_for(actor: User, shift: Shift) -> bool:
    if actor.is_superuser or actor.pk == shift.radiologist_id:
        return True
    return actor.role == Role.ARS_COORDINATOR and actor.region_id == shift.line.region_id


@transaction.atomic
def shift_flags_refresh(*, radiologist: User, since: dt.datetime, until: dt.datetime) -> list[Shift]:
    """Check again the radiologist's shifts starting between ``since`` and ``until`` and store their violations
    as flags (a flagged shift is offered no case and covers nothing). Returns the shifts newly flagged."""
    newly: list[Shift] = []
    for shift in (Shift.objects.select_for_update().select_related("line__region")
                  .filter(radiologist=radiologist, start__gte=since, start__lt=until)):
        violations = shift_violations(line=shift.line, radiologist=radiologist, start=shift.start, end=shift.end,
                                      kind=shift.kind, shift_id=shift.pk)
        flags = [{"code": v.code, "message": v.message} for v in violations]
        if flags != shift.flags:
            if {f["code"] for f in flags} - {f.get("code") for f in shift.flags or [] if isinstance(f, dict)}:
                newly.append(shift)
            shift.flags = flags
            shift.save(update_fields=["flags", "updated_at"])
    return newly


def intervention_check(*, shift: Shift, start: dt.datetime, end: dt.datetime, actor: User) -> None:
    """Refuse (ApplicationError) an intervention that cannot be recorded on this astreinte by this actor."""
    if not _may_record_for(actor, shift):
        raise PermissionDeniedError(_("Only the radiologist on astreinte or the region's coordinator may record "
                                      "its interventions."), code="not_yours")
    if shift.kind != ShiftKind.ASTREINTE:
        raise ApplicationError(_("Interventions are recorded on an at-home astreinte only (a garde or remote duty "
                                 "is work time in full)."), code="not_astreinte")
    if start.tzinfo is None or end.tzinfo is None:
        raise ApplicationError(_("Intervention times must carry a timezone."))
    if end <= start:
        raise ApplicationError(_("An intervention ends after it starts."), code="invalid_interval")
    if not (shift.start <= start < shift.end) or end - start > INTERVENTION_MAX:
        span = f"{shift.start.astimezone(PARIS):%d/%m %H:%M} – {shift.end.astimezone(PARIS):%d/%m %H:%M}"
        raise ApplicationError(_("An intervention starts during its astreinte (%(span)s) and lasts at most 12 "
                                 "hours.") % {"span": span}, code="outside_astreinte")
    if shift.interventions.filter(start__lt=end, end__gt=start).exists():
        raise ApplicationError(_("This intervention overlaps one already recorded."), code="overlap")


@transaction.atomic
def intervention_record(*, shift_id: int, start: dt.datetime, end: dt.datetime, actor: User,
                        note: str = "") -> tuple[Intervention, list[Shift]]:
    """Record an astreinte intervention (travel and intervention time: work, followed by 11 hours of rest), by
    the radiologist on astreinte or the region's coordinator. The radiologist's shifts that now break a rest
    or work-time rule are flagged (returned): routing no longer offers them cases, the coverage shows the gap."""
    shift = Shift.objects.select_for_update().select_related("line__region", "radiologist").filter(pk=shift_id) \
        .first()
    if shift is None:
        raise NotFoundError(_("This shift does not exist."))
    intervention_check(shift=shift, start=start, end=end, actor=actor)
    intervention = Intervention.objects.create(shift=shift, start=start, end=end, note=note.strip()[:300],
                                               recorded_by=actor)
    audit_record(action="create", obj=intervention, details={
        "shift": shift.pk, "radiologist": shift.radiologist_id, "start": start.isoformat(), "end": end.isoformat()})
    flagged = shift_flags_refresh(radiologist=shift.radiologist, since=start, until=end + dt.timedelta(days=2))
    if flagged:
        audit_record(action="update", object_type="rosters.shift", object_repr=f"{len(flagged)} shifts flagged",
                     details={"shifts": [s.pk for s in flagged], "after_intervention": intervention.pk})
    return intervention, flagged


CSV_COLUMNS = ["line", "radiologist", "start", "end", "kind", "role"]


@dataclass
class ImportResult:
    created: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)

    @property
    def ok(self) -> bool:
        return not self.errors


def _parse_local(value: str) -> dt.datetime:
    value = value.strip()
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%d/%m/%Y %H:%M"):
        try:
            return dt.datetime.strptime(value, fmt).replace(tzinfo=PARIS).astimezone(dt.UTC)
        except ValueError:
            continue
    raise ValueError(f"unreadable date/time {value!r} (expected YYYY-MM-DD HH:MM, Paris time)")


def roster_import_csv(*, region_id: int, content: str) -> ImportResult:
    """Import shifts from CSV (columns: line, radiologist, start, end, kind, role; times in Paris time;
    line by name, radiologist by username or RPPS). All-or-nothing: any error, nothing is imported."""
    result = ImportResult()
    reader = csv.DictReader(io.StringIO(content.lstrip("\ufeff")), delimiter=";" if ";" in content.split("\n")[0]
                            else ",")
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS[:4] if c not in header]
    if missing:
        result.errors.append((1, f"missing columns: {', '.join(missing)} (expected {', '.join(CSV_COLUMNS)})"))
        return result
    lines = {ln.name.strip().lower(): ln for ln in OnCallLine.objects.filter(region_id=region_id)
             .select_related("region")}
    pending: list[tuple[int, dict]] = []
    batch: dict[int, list[ShiftFacts]] = {}
    for number, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        try:
            line = lines.get(row["line"].lower())
            if line is None:
                raise ValueError(f"unknown line {row['line']!r} in this region")
            ident = row["radiologist"]
            who = (User.objects.filter(Q(username=ident) | Q(rpps=ident), role=Role.RADIOLOGIST).first()
                   if ident else None)
            if who is None:
                raise ValueError(f"unknown radiologist {row['radiologist']!r} (username or RPPS)")
            start, end = _parse_local(row["start"]), _parse_local(row["end"])
            if end <= start:
                raise ValueError("the shift ends before it starts")
            kind = row.get("kind") or ShiftKind.GARDE
            role = row.get("role") or ShiftRole.PRIMARY
            if kind not in ShiftKind.values:
                raise ValueError(f"unknown kind {kind!r} (one of {', '.join(ShiftKind.values)})")
            if role not in ShiftRole.values:
                raise ValueError(f"unknown role {role!r} (one of {', '.join(ShiftRole.values)})")
            violations = shift_violations(line=line, radiologist=who, start=start, end=end, kind=kind,
                                          extra_others=batch.get(who.pk, []))
            if violations:
                raise ValueError(" ".join(v.message for v in violations))
        except (ValueError, KeyError) as exc:
            result.errors.append((number, str(exc)))
            continue
        batch.setdefault(who.pk, []).append(ShiftFacts(start, end, kind, line.pk))
        pending.append((number, {"line": line, "radiologist": who, "start": start, "end": end, "kind": kind,
                                 "role": role}))
    if result.errors:
        return result
    if not pending:
        result.errors.append((1, "no shift in the file"))
        return result
    with transaction.atomic():
        for _number, fields in pending:
            Shift.objects.create(**fields)
        audit_record(action="import", object_type="rosters.shift", object_repr=f"{len(pending)} shifts",
                     details={"region_id": region_id, "count": len(pending)})
    result.created = len(pending)
    return result
