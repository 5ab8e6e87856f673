"""Actors panel: establishments, user accounts per role, modalities in use and people trained."""

from __future__ import annotations

from django.db.models import Count, Q, Sum

from apps.dashboards.models import DailyCaseAggregate, TrainingSession
from apps.dashboards.selectors.scope import (
    PARIS,
    DashboardFilter,
    Table,
    aggregate_scope_q,
    cases_in_scope,
    establishments_in_scope,
    live_filters,
    period_split,
)


def actors_panel(f: DashboardFilter, *, use_aggregates: bool = True) -> dict[str, Table]:
    from apps.accounts.models import User
    from apps.regions.models import ImagingDevice

    est = establishments_in_scope(f)
    by_kind = (est.values("kind").order_by("kind")
               .annotate(total=Count("id"), operational=Count("id", filter=Q(active=True))))
    users = User.objects.filter(is_active=True).filter(
        Q(memberships__establishment__in=est.values("pk")) | Q(region_id=f.region_id)
        if not f.scope_establishment_id else Q(memberships__establishment_id=f.scope_establishment_id))
    by_role = (users.values("role").order_by("role").annotate(
        accounts=Count("id", distinct=True),
        active_in_period=Count("id", distinct=True, filter=Q(last_login__gte=f.start, last_login__lt=f.end))))
    split = period_split(f, use_aggregates=use_aggregates)
    used: dict[str, int] = {}
    sources = [cases_in_scope(lf).values("modality_id").order_by().annotate(n=Count("id"))
               for lf in live_filters(f, split)]
    if split.day_runs:
        sources.append(DailyCaseAggregate.objects.filter(aggregate_scope_q(f, split)).values("modality_id")
                       .order_by().annotate(n=Sum("requests")))
    for source in sources:
        for modality, n in source.values_list("modality_id", "n"):
            used[modality] = used.get(modality, 0) + n
    devices = dict(ImagingDevice.objects.filter(establishment__in=est.values("pk")).values("modality_id")
                   .order_by().annotate(n=Count("id")).values_list("modality_id", "n"))
    training = TrainingSession.objects.filter(region_id=f.region_id, date__gte=f.start.astimezone(PARIS).date(),
                                              date__lt=f.end.astimezone(PARIS).date())
    if f.scope_establishment_id:
        training = training.filter(establishment_id=f.scope_establishment_id)
    trained = training.values("profile").order_by("profile").annotate(sessions=Count("id"),
                                                                      people=Sum("people_trained"))
    return {
        "actors_establishments": Table(
            "actors_establishments", "Establishments in the mesh", ("kind", "total", "operational"),
            tuple((r["kind"], r["total"], r["operational"]) for r in by_kind)),
        "actors_users": Table(
            "actors_users", "Users per profile", ("role", "accounts", "logged_in_during_period"),
            tuple((r["role"] or "-", r["accounts"], r["active_in_period"]) for r in by_role)),
        "actors_modalities": Table(
            "actors_modalities", "Modalities in use", ("modality", "requests_in_period", "devices"),
            tuple((m, used.get(m, 0), devices.get(m, 0)) for m in sorted(set(used) | set(devices)))),
        "actors_training": Table(
            "actors_training", "People trained per profile", ("profile", "sessions", "people_trained"),
            tuple((r["profile"], r["sessions"], r["people"]) for r in trained)),
    }
