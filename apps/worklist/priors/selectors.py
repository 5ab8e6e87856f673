"""Reads of the priors: for the case page, the viewer and the visibility rule (``apps.worklist.selectors``)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from apps.worklist.priors.models import PriorQuery, PriorState, PriorStudy


def prior_query_of(case_id: int) -> PriorQuery | None:
    return PriorQuery.objects.filter(case_id=case_id).select_related("node").first()


def priors_of_case(case_id: int) -> QuerySet[PriorStudy]:
    return PriorStudy.objects.filter(case_id=case_id).select_related("requested_by").order_by("-study_datetime", "pk")


def priors_retrieval_asked(case_id: int) -> QuerySet[PriorStudy]:
    """The priors whose retrieval was asked for the case (automatically or by someone), in the order asked: what
    the tele-act record lists, retrieved or not."""
    return (PriorStudy.objects.filter(case_id=case_id, requested_at__isnull=False).select_related("requested_by")
            .order_by("requested_at", "pk"))


def prior_study_uids(case_id: int) -> list[str]:
    """The retrieved priors' Study Instance UIDs, most recent first (what the viewer opens beside the case)."""
    return list(PriorStudy.objects.filter(case_id=case_id, state=PriorState.RETRIEVED, study__isnull=False)
                .order_by("-study_datetime", "pk").values_list("study__study_uid", flat=True))


def prior_study_ids_of_cases(cases: QuerySet[Any]) -> QuerySet[Any]:
    """Subquery: the stored studies that are retrieved priors of these cases."""
    return PriorStudy.objects.filter(case__in=cases, study__isnull=False).values("study_id")
