"""The case page's "Prior studies" section: what it shows, in the reader's language. Opening the page of a case
whose priors were never queried asks for the query (the site PACS may have been configured since)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from apps.worklist.priors import selectors, services
from apps.worklist.priors.models import PriorQuery, PriorQueryState, PriorState, PriorStudy

# Who may ask for a prior to be retrieved, as the permission matrix says (``worklist:action`` ``prior_retrieve``:
# the image readers); everyone who sees the case sees the list.
RETRIEVER_ROLES = frozenset({"radiologist", "emergency_physician", "radiographer"})


def error_text(error: str) -> str:
    """A stored error (``code: detail``, English) as the reader reads it."""
    if not error:
        return ""
    code, _sep, detail = error.partition(":")
    label = {
        "unreachable": _("The site PACS could not be reached."),
        "timeout": _("The site PACS did not answer in time."),
        "failed": _("The site PACS answered with an error."),
        "no_identifier": _("No patient identifier to query with (INS or local patient id)."),
        "not_arrived": _("The images did not arrive from the site PACS."),
    }.get(code.strip(), _("Error."))
    return f"{label} {detail.strip()}".strip()


def state_text(prior: PriorStudy) -> str:
    return {
        PriorState.AVAILABLE: _("available"),
        PriorState.REQUESTED: _("retrieving"),
        PriorState.RETRIEVING: _("retrieving"),
        PriorState.RETRIEVED: _("retrieved"),
        PriorState.FAILED: _("failed"),
    }.get(PriorState(prior.state), prior.state)


@dataclass(frozen=True)
class PriorRow:
    prior: PriorStudy
    state: str
    error: str
    can_retrieve: bool


@dataclass(frozen=True)
class PriorsPanel:
    query: PriorQuery
    rows: list[PriorRow]
    error: str
    may_retrieve: bool
    in_progress: bool = False  # a query or a retrieval under way: the page offers to refresh
    version: str = ""  # changes with any state: the page's poll re-renders the section (``views.case_priors``)


def priors_panel(*, case_id: int, user: Any, ask: bool = True) -> PriorsPanel | None:
    """None when the site has no PACS to query and none was ever queried (the section is not shown). ``ask``:
    a case with its study never queried is queried now (the case page; not its polls)."""
    query = selectors.prior_query_of(case_id)
    if query is None and ask and services.priors_query_request(case_id=case_id):
        query = selectors.prior_query_of(case_id)
    if query is None:
        return None
    may = getattr(user, "role", "") in RETRIEVER_ROLES
    rows = [PriorRow(prior=p, state=state_text(p), error=error_text(p.error),
                     can_retrieve=may and p.state in (PriorState.AVAILABLE, PriorState.FAILED))
            for p in selectors.priors_of_case(case_id)]
    version = "|".join([query.state, str(query.attempts), *(f"{r.prior.pk}:{r.prior.state}" for r in rows)])
    return PriorsPanel(query=query, rows=rows, error=error_text(query.error), may_retrieve=may, version=version,
                       in_progress=query.state in (PriorQueryState.PENDING, PriorQueryState.RUNNING) or any(
                           r.prior.state in (PriorState.REQUESTED, PriorState.RETRIEVING) for r in rows))
