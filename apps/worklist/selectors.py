"""Reads on cases, scoped to the principal who asks.

Invariant: this module decides, in one place, which cases a principal may see: every queryset handed to a
view, of the web app or of the API, starts from ``cases_visible_to(principal)`` (or ``studies_visible_to``,
derived from it). A case outside it does not exist for that principal (the views answer 404, never 403), so
a guessed URL or identifier never leaks another establishment's patient. Reading what these querysets return
is audited by the views that render it.

A principal is a user of the web app or of the API (session), or an API key (``apps.api.authentication.
Integration``, role ``"integration"``), which acts for one establishment and never for a person.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from django.db.models import Case as When_
from django.db.models import Exists, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import Membership, Subspecialty, User
from apps.regions.selectors import agreements_in_force
from apps.rosters.models import LineKind, OnCallLine
from apps.rosters.selectors import lines_for_user
from apps.studies.models import Study
from apps.worklist.models import (
    OPEN_STATUSES,
    AssignmentState,
    Case,
    CaseStatus,
    ExpertRequest,
    ExpertRequestStatus,
    Origin,
    Report,
    Urgency,
)
from apps.worklist.priors.selectors import prior_study_ids_of_cases

SITE_ROLES = {"emergency_physician", "radiographer", "establishment_admin"}
INTEGRATION_ROLE = "integration"


class Visibility(enum.Enum):
    """How far a radiologist's view reaches; site staff, coordinators and API keys see the same either way."""

    # Every case the principal takes part in: assigned, claimed, on a line they hold now, validated or
    # reported by them, or sent to them (or to a line they hold) for an expert opinion. The web app and the
    # API (a radiologist's session) alike: same person, same rights, whatever the channel.
    CARE = "care"
    # A radiologist's own queue: the cases assigned to or claimed by them, not the line's unclaimed ones nor
    # expert requests. The API's /worklist/ ("what do I have to read").
    OWN_QUEUE = "own_queue"


def user_line_ids(user: Any, *, at: dt.datetime | None = None) -> list[int]:
    """The on-call lines a radiologist holds now (a shift on the line covers the instant)."""
    return list(lines_for_user(user_id=user.pk, at=at or timezone.now()).values_list("pk", flat=True))


def user_establishment_ids(user: Any) -> list[int]:
    return list(user.memberships.values_list("establishment_id", flat=True))


def _site_perimeter(principal: Any) -> Q | None:
    """The establishments whose cases a site-scoped principal sees, as a filter on ``site`` (Case and Study
    alike); None when the principal's access goes case by case (a radiologist) or does not exist."""
    role = getattr(principal, "role", "")
    if role == INTEGRATION_ROLE:
        # An API key: its one establishment. A user account with this role has none (keys are not users).
        establishment_id = getattr(principal, "establishment_id", None)
        return Q(site_id=establishment_id) if establishment_id else Q(pk__in=[])
    if role in SITE_ROLES:
        return Q(site_id__in=user_establishment_ids(principal))
    if role == "ars_coordinator":
        region_id = getattr(principal, "region_id", None)
        return Q(site__territory__region_id=region_id) if region_id else Q(pk__in=[])
    return None


def employer_may_read(establishment_ids: list[int]) -> Q:
    """Agreement first, per radiologist, as a filter on cases: the case's site is one of the reader's
    establishments, or one of them has an agreement in force with the site for the case's modality (another
    holder of a pooled line does not count)."""
    agreed = agreements_in_force().filter(requesting_id=OuterRef("site_id"), partner_id__in=establishment_ids,
                                          modalities=OuterRef("modality_id"))
    return Q(site_id__in=establishment_ids) | Q(Exists(agreed))


def _provider_key_cases(principal: Any) -> QuerySet[Case]:
    """The cases a private provider's API key reaches beyond its own site's: those on its queues' lines while
    they are queued or taken by one of its radiologists (its system takes them, and their images, from there).
    Empty for any other key."""
    establishment_id = getattr(principal, "establishment_id", None) or 0
    staff = Membership.objects.filter(establishment_id=establishment_id).values("user_id")
    return Case.objects.filter(Q(assignment_state=AssignmentState.QUEUED) | Q(assigned_to_id__in=staff),
                               assigned_line_id__in=provider_queue_lines([establishment_id]))


def _radiologist_cases(user: Any, visibility: Visibility) -> Q:
    own = Q(assigned_to_id=user.pk) | Q(claimed_by_id=user.pk)
    if visibility is Visibility.OWN_QUEUE:
        return own
    lines = user_line_ids(user)
    # Subqueries rather than joins on the reverse relations: no duplicate rows, no DISTINCT to carry.
    expert = ExpertRequest.objects.filter(Q(expert_id=user.pk) | Q(line_id__in=lines)).values("case_id")
    reported = Report.objects.filter(author_id=user.pk).values("case_id")
    # A line's queue shows only the cases the radiologist may read: their employer's agreement, not the line's.
    mine = user_establishment_ids(user)
    # A private provider's queue is its radiologists' whether or not the provider rosters them here.
    queued = Q(assignment_state=AssignmentState.QUEUED, assigned_line_id__in=provider_queue_lines(mine))
    on_line = (Q(assigned_line_id__in=lines) | queued) & employer_may_read(mine)
    return own | on_line | Q(validated_by_id=user.pk) | Q(pk__in=reported) | Q(pk__in=expert)


def provider_queue_lines(establishment_ids: list[int]) -> QuerySet[OnCallLine, Any]:
    """The lines with an active provider queue held by these establishments (a subquery of line ids)."""
    return OnCallLine.objects.filter(kind=LineKind.PROVIDER, provider_queue__active=True,
                                     holders__in=establishment_ids).values("pk")


def provider_queue_cases(principal: Any) -> QuerySet[Case]:
    """The open cases waiting in the queues of the provider the principal works for: a radiologist's
    establishments, or an API key's establishment. Oldest first within urgency is the caller's order."""
    if getattr(principal, "role", "") == INTEGRATION_ROLE:
        establishment_ids = [getattr(principal, "establishment_id", None) or 0]
    elif getattr(principal, "role", "") == "radiologist":
        establishment_ids = user_establishment_ids(principal)
    else:
        return Case.objects.none()
    return (Case.objects.filter(assignment_state=AssignmentState.QUEUED, status__in=OPEN_STATUSES,
                                assigned_line_id__in=provider_queue_lines(establishment_ids))
            .filter(employer_may_read(establishment_ids)))


def cases_visible_to(principal: Any, *, visibility: Visibility = Visibility.CARE) -> QuerySet[Case]:
    """The cases ``principal`` may see, by role.

    - API key: the cases of its establishment; a private provider's key also those on its queues.
    - emergency physician, radiographer, establishment admin: the cases of the establishments they belong to.
    - ARS coordinator: the cases of their region.
    - radiologist: see ``Visibility`` (care relationship by default; own queue on request). Belonging to an
      establishment or being authorised to read for a site does not open its other cases.
    - anyone else (no role, anonymous): nothing.
    """
    qs = Case.objects.all()
    if not getattr(principal, "is_authenticated", False):
        return qs.none()
    perimeter = _site_perimeter(principal)
    if perimeter is not None and getattr(principal, "role", "") == INTEGRATION_ROLE:
        return qs.filter(perimeter | Q(pk__in=_provider_key_cases(principal).values("pk")))
    if perimeter is not None:
        return qs.filter(perimeter)
    if getattr(principal, "role", "") == "radiologist":
        return qs.filter(_radiologist_cases(principal, visibility))
    return qs.none()


def studies_visible_to(principal: Any) -> QuerySet[Any]:
    """Studies: site-scoped principals see their sites' studies (matched or not, for matching); a radiologist
    only the studies attached to the cases they may see, and those cases' retrieved priors."""
    qs = Study.objects.all()
    if not getattr(principal, "is_authenticated", False):
        return qs.none()
    perimeter = _site_perimeter(principal)
    if perimeter is not None and getattr(principal, "role", "") == INTEGRATION_ROLE:
        provider = _provider_key_cases(principal).values("pk")
        return qs.filter(perimeter | Q(case__in=provider) | Q(pk__in=prior_study_ids_of_cases(provider)))
    if perimeter is not None:
        return qs.filter(perimeter)
    if getattr(principal, "role", "") == "radiologist":
        # The case's own studies and its retrieved priors (apps.worklist.priors): whoever sees the case.
        visible = cases_visible_to(principal).values("pk")
        return qs.filter(Q(case__in=visible) | Q(pk__in=prior_study_ids_of_cases(visible)))
    return qs.none()


def case_get_for_user(*, user: Any, public_id: Any) -> Case:
    """The case if the user may see it; Case.DoesNotExist otherwise (the view turns it into 404)."""
    return (cases_visible_to(user)
            .select_related("site", "modality", "requested_by", "assigned_to", "assigned_line", "claimed_by",
                            "validated_by")
            .get(public_id=public_id))


def _urgency_rank() -> When_:
    return When_(When(urgency=Urgency.VITAL, then=Value(0)), When(urgency=Urgency.URGENT, then=Value(1)),
                 default=Value(2), output_field=IntegerField())


def radiologist_worklist(*, user: Any, modality_code: str = "", site_id: int | None = None) -> QuerySet[Case]:
    """Open cases of the radiologist's night, most urgent first, then longest waiting."""
    qs = (cases_visible_to(user).filter(status__in=OPEN_STATUSES)
          .select_related("site", "modality", "claimed_by", "assigned_to", "assigned_line")
          .annotate(urgency_rank=_urgency_rank(), waiting_since=Coalesce("images_complete_at", "requested_at"))
          .order_by("urgency_rank", "waiting_since", "pk"))
    if modality_code:
        qs = qs.filter(modality_id=modality_code)
    if site_id:
        qs = qs.filter(site_id=site_id)
    return qs


def expert_requests_for(user: Any) -> QuerySet[ExpertRequest]:
    return (ExpertRequest.objects.filter(status=ExpertRequestStatus.OPEN)
            .filter(Q(expert=user) | Q(line_id__in=user_line_ids(user)))
            .select_related("case", "case__site", "case__modality", "requested_by", "line"))


def site_requests(*, user: Any, now: dt.datetime | None = None, hours: int = 24) -> QuerySet[Case]:
    """Tonight's requests of the user's site(s): the last ``hours`` hours, plus anything still open."""
    now = now or timezone.now()
    return (cases_visible_to(user)
            .filter(Q(requested_at__gte=now - dt.timedelta(hours=hours)) | Q(status__in=OPEN_STATUSES))
            .select_related("site", "modality", "requested_by", "assigned_to", "assigned_line", "claimed_by")
            .annotate(urgency_rank=_urgency_rank())
            .order_by("-requested_at"))


def night_start(now: dt.datetime) -> dt.datetime:
    """Noon (Europe/Paris) before ``now``'s night: a PDS night runs from the evening to the next morning, so
    at 03:00 "tonight" began yesterday at noon, and at 20:00 today at noon."""
    local = timezone.localtime(now)
    noon = local.replace(hour=12, minute=0, second=0, microsecond=0)
    return noon if local >= noon else noon - dt.timedelta(days=1)


def signed_tonight(*, user: Any, now: dt.datetime | None = None) -> QuerySet[Case]:
    """The cases whose report ``user`` signed tonight, latest first: a signed case leaves the worklist, and this
    is its way back in for an addendum."""
    return (cases_visible_to(user)
            .filter(status=CaseStatus.REPORTED, report__signed_by_id=user.pk,
                    signed_at__gte=night_start(now or timezone.now()))
            .select_related("site", "modality").order_by("-signed_at"))


def unmatched_studies(*, user: Any) -> QuerySet[Any]:
    """Studies of the user's site(s) with no request: not attached, or attached to a case that the gateway
    created for them (origin 'dicom') which is still open."""
    return (Study.objects.filter(site_id__in=user_establishment_ids(user), ultrasound=False)
            .filter(Q(case__isnull=True) | Q(case__origin=Origin.DICOM, case__status__in=OPEN_STATUSES))
            .select_related("case", "site").order_by("-last_received_at"))


# How long an ultrasound study received by DICOM stays in the site's unmatched list (a night and the day after).
ULTRASOUND_SHOWN_FOR = dt.timedelta(hours=24)


def ultrasound_studies_received(*, user: Any, now: dt.datetime | None = None) -> QuerySet[Any]:
    """Ultrasound studies of the user's site(s) received by DICOM lately: never read remotely, shown beside the
    unmatched studies with the redirection (the centre to send the patient to), never offered for matching."""
    since = (now or timezone.now()) - ULTRASOUND_SHOWN_FOR
    return (Study.objects.filter(site_id__in=user_establishment_ids(user), ultrasound=True,
                                 last_received_at__gte=since)
            .select_related("case", "site").order_by("-last_received_at"))


def requests_awaiting_images(*, user: Any) -> QuerySet[Case]:
    return (cases_visible_to(user)
            .filter(status__in=[CaseStatus.AWAITING_VALIDATION, CaseStatus.INFO_REQUESTED, CaseStatus.ACCEPTED],
                    studies__isnull=True)
            .exclude(origin=Origin.DICOM).select_related("modality").order_by("-requested_at"))


# CaseContact states beside the AssignmentState values: a radiologist has claimed the case, or has reported it.
READING = "reading"
READ = "read"


@dataclass(frozen=True)
class CaseContact:
    """Who has the case now, as the requesting site sees it: ``state`` is ``reading``, ``read`` or an
    AssignmentState value; ``name`` is empty while nobody is assigned."""

    state: str
    name: str = ""
    phone: str = ""
    line_name: str = ""

    @property
    def label(self) -> str:
        if self.state == READING:
            return _("Being read by %(name)s") % {"name": self.name}
        if self.state == READ:
            return _("Read by %(name)s") % {"name": self.name}
        if self.state == AssignmentState.OFFERED:
            return _("Assigned to %(name)s, awaiting acknowledgement") % {"name": self.name}
        if self.state == AssignmentState.ACKNOWLEDGED:
            return _("Assigned to %(name)s (acknowledged)") % {"name": self.name}
        if self.state == AssignmentState.QUEUED:
            return _("In the queue of the private provider %(line)s, not yet taken") % {"line": self.line_name}
        if self.state == AssignmentState.COORDINATOR:
            return _("Not yet assigned: the regional coordinator is looking for a radiologist")
        return _("Not yet assigned")


def case_contact(case: Case) -> CaseContact | None:
    """Whom the requesting site calls about this case: the radiologist reading it, else the one it is offered
    to or who acknowledged it, else nobody yet ("not yet assigned"). Read from the case itself, never from
    tonight's roster: after an escalation the radiologist who did not answer is no longer the one to call, and
    a routing failure shows as what it is, a case nobody has. None for a closed case that nobody read
    (cancelled, refused, redirected): there is no one to reach about it."""
    reader = case.claimed_by
    state = READ if case.status == CaseStatus.REPORTED else READING
    if reader is None and case.assignment_state in (AssignmentState.OFFERED, AssignmentState.ACKNOWLEDGED):
        reader, state = case.assigned_to, case.assignment_state
    if reader is not None:
        # The line is the assignment's: it is the reader's only if the reader is the assigned radiologist.
        line = case.assigned_line if case.assigned_to_id == reader.pk else None
        return CaseContact(state=state, name=reader.display_name, phone=reader.phone or (line.phone if line else ""),
                           line_name=line.name if line else "")
    if case.status not in OPEN_STATUSES:
        return None
    if case.assignment_state == AssignmentState.QUEUED and case.assigned_line is not None:
        return CaseContact(state=AssignmentState.QUEUED, phone=case.assigned_line.phone,
                           line_name=case.assigned_line.name)
    if case.assignment_state == AssignmentState.COORDINATOR:
        return CaseContact(state=AssignmentState.COORDINATOR)
    return CaseContact(state=AssignmentState.UNASSIGNED)


def referral_lines(case: Case) -> QuerySet[Any]:
    return OnCallLine.objects.filter(kind=LineKind.REFERRAL, active=True, region_id=case.site.territory.region_id)


def referral_subspecialties(case: Case) -> list[tuple[str, str]]:
    """(sub-specialty, label) of the region's referral lines, for the expert request form: the radiologist
    picks the sub-specialty, the service routes to the referral centre's line (its name shown in the label)."""
    names: dict[str, list[str]] = {}
    for line in referral_lines(case).order_by("name"):
        names.setdefault(line.subspecialty, []).append(line.name)
    labels = dict(Subspecialty.choices)
    return [(code, f"{labels.get(code, code or '-')} ({', '.join(lines)})") for code, lines in sorted(names.items())]


def site_radiographers(case: Case) -> QuerySet[Any]:
    """The radiographers of the case's site (who may have performed the exam)."""
    return (User.objects.filter(role="radiographer", is_active=True, memberships__establishment=case.site_id)
            .distinct().order_by("last_name", "first_name"))


def radiologists_for_handoff(case: Case, *, exclude_id: int) -> QuerySet[Any]:
    return (User.objects.filter(role="radiologist", is_active=True, authorised_sites=case.site_id)
            .exclude(pk=exclude_id).order_by("last_name"))
