"""Writes on rosters: shifts are created through the roster checks; a month is imported from CSV all-or-nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q

from apps.accounts.models import Role, User
from apps.audit.services import audit_record
from apps.core.errors import ApplicationError
from apps.regions.calendar import PARIS
from apps.rosters.checks import RadiologistFacts, ShiftFacts, Violation, check_shift
from apps.rosters.models import OnCallLine, Shift, ShiftKind, ShiftRole


def radiologist_facts(user: User) -> RadiologistFacts:
    return RadiologistFacts(user.pk, user.display_name, user.birth_date, user.volunteers_over_60,
                            frozenset(user.authorised_sites.values_list("pk", flat=True)))


def _shift_facts(s: Shift) -> ShiftFacts:
    return ShiftFacts(s.start, s.end, s.kind, s.line_id, s.pk)


def shift_violations(*, line: OnCallLine, radiologist: User, start: dt.datetime, end: dt.datetime, kind: str,
                     shift_id: int | None = None, extra_others: list[ShiftFacts] | None = None) -> list[Violation]:
    """Roster checks for a (new or changed) shift against the radiologist's stored shifts."""
    window = (start - dt.timedelta(days=40), end + dt.timedelta(days=40))
    others = [_shift_facts(s) for s in Shift.objects.filter(radiologist=radiologist, end__gt=window[0],
                                                            start__lt=window[1])]
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
        raise ApplicationError("Shift times must carry a timezone.")
    if end <= start:
        raise ApplicationError("A shift ends after it starts.")
    if radiologist.role != Role.RADIOLOGIST:
        raise ApplicationError(f"{radiologist} is not a radiologist.")
    violations = shift_violations(line=line, radiologist=radiologist, start=start, end=end, kind=kind)
    if violations and not allow_violations:
        raise ApplicationError(" ".join(v.message for v in violations), code="roster_check",
                               extra={"violations": [v.code for v in violations]})
    shift = Shift.objects.create(line=line, radiologist=radiologist, start=start, end=end, kind=kind, role=role,
                                 flags=[{"code": v.code, "message": v.message} for v in violations])
    audit_record(action="create", obj=shift, details={"line": line.pk, "flags": [v.code for v in violations]})
    return shift


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
