"""Risks panel: the criticality matrix and the risk register with its review dates."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import BooleanField, Case, Count, DateField, Func, Q, QuerySet, When

from apps.dashboards.models import RiskEntry, RiskStatus, criticality_level
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
    return (RiskEntry.objects.filter(region_id=region_id)
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
        "risk", "nature", "impact", "probability", "criticality", "preventive_action", "owner", "due_date",
        "status", "last_review", "next_review_on", "overdue_flag")
    return {
        "risks_matrix": Table("risks_matrix", "Criticality matrix (open risks)",
                              ("impact", "probability 1", "probability 2", "probability 3", "probability 4"),
                              matrix),
        "risks_register": Table(
            "risks_register", "Risk register",
            ("risk", "nature", "impact", "probability", "criticality", "level", "preventive_action", "owner",
             "due_date", "status", "last_review", "next_review", "review_overdue"),
            tuple((r["risk"], r["nature"], r["impact"], r["probability"], r["criticality"],
                   criticality_level(r["criticality"]), r["preventive_action"], r["owner"], r["due_date"],
                   r["status"], r["last_review"], r["next_review_on"], bool(r["overdue_flag"])) for r in risks)),
    }
