"""Risks panel: the criticality matrix, the risk register with its review dates and the preventive actions of
each risk (several per risk, each with its owner, due date and status)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import BooleanField, Case, Count, DateField, Func, Min, Q, QuerySet, When

from apps.dashboards.models import RISK_ACTION_OPEN, RiskAction, RiskEntry, RiskStatus, criticality_level
from apps.dashboards.selectors.scope import DashboardFilter, Table


class _DateAddDays(Func):
    """date + n days (PostgreSQL: date + integer; SQLite: date() modifier)."""

    output_field = DateField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="(%(expressions)s)", arg_joiner=" + ", **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="date(%(expressions)s || ' days')",
                           arg_joiner=", '+' || ", **extra)


def risks_with_review(region_id: int, *, today: dt.date) -> QuerySet[RiskEntry]:
    open_q = Q(actions__status__in=RISK_ACTION_OPEN)
    return (RiskEntry.objects.filter(region_id=region_id)
            .annotate(n_actions=Count("actions"), n_open=Count("actions", filter=open_q),
                      n_overdue=Count("actions", filter=open_q & Q(actions__due_date__lt=today)),
                      next_due=Min("actions__due_date", filter=open_q))
            .annotate(next_review_on=_DateAddDays("last_review", "review_interval_days"))
            .annotate(overdue_flag=Case(When(Q(next_review_on__lt=today) & ~Q(status=RiskStatus.CLOSED), then=True),
                                        default=False, output_field=BooleanField()))
            .order_by("-criticality", "risk"))


def risks_panel(f: DashboardFilter, *, today: dt.date) -> dict[str, Table]:
    matrix_counts = {(r["impact"], r["probability"]): r["n"] for r in
                     RiskEntry.objects.filter(region_id=f.region_id).exclude(status=RiskStatus.CLOSED)
                     .values("impact", "probability").order_by().annotate(n=Count("id"))}
    matrix = tuple((f"impact {i}", *[matrix_counts.get((i, p), 0) for p in range(1, 5)]) for i in range(4, 0, -1))
    risks = risks_with_review(f.region_id, today=today).values(  # type: ignore[misc]
        "risk", "nature", "impact", "probability", "criticality", "n_actions", "n_open", "n_overdue", "next_due",
        "status", "last_review", "next_review_on", "overdue_flag")
    actions = (RiskAction.objects.filter(risk__region_id=f.region_id).select_related("risk")
               .order_by("-risk__criticality", "risk__risk", "due_date", "pk"))
    return {
        "risks_matrix": Table("risks_matrix", "Criticality matrix (open risks)",
                              ("impact", "probability 1", "probability 2", "probability 3", "probability 4"),
                              matrix),
        "risks_register": Table(
            "risks_register", "Risk register",
            ("risk", "nature", "impact", "probability", "criticality", "level", "actions", "open_actions",
             "overdue_actions", "next_due_date", "status", "last_review", "next_review", "review_overdue"),
            tuple((r["risk"], r["nature"], r["impact"], r["probability"], r["criticality"],
                   criticality_level(r["criticality"]), r["n_actions"], r["n_open"], r["n_overdue"], r["next_due"],
                   r["status"], r["last_review"], r["next_review_on"], bool(r["overdue_flag"])) for r in risks)),
        "risks_actions": Table(
            "risks_actions", "Preventive actions",
            ("risk", "action", "owner", "due_date", "status", "overdue"),
            tuple((a.risk.risk, a.action, a.owner, a.due_date, a.status, a.is_overdue(today)) for a in actions)),
    }
