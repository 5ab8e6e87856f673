"""Practice deviations beside the turnaround: images acquired before the indication was validated
(justification after acquisition), per site. Counted live from the cases (a flag on the case, indexed scan of
the period), so aggregated and live dashboards give the same rows."""

from __future__ import annotations

from django.db.models import Count, Q

from apps.dashboards.selectors.scope import DashboardFilter, Table, cases_in_scope


def justification_table(f: DashboardFilter) -> Table:
    """Per requesting site: requests, those whose images came before the indication was validated, share (%).
    Ultrasound redirected without imaging is left out (nothing was acquired here)."""
    from apps.regions.models import Establishment

    rows = (cases_in_scope(f).exclude(status="redirected").values("site_id").order_by()
            .annotate(n=Count("id"), late=Count("id", filter=Q(acquired_before_validation=True))))
    names = dict(Establishment.objects.filter(pk__in=[r["site_id"] for r in rows]).values_list("pk", "name"))
    out = sorted(((names.get(r["site_id"], str(r["site_id"])), r["n"], r["late"],
                   round(100.0 * r["late"] / r["n"], 1) if r["n"] else 0.0) for r in rows), key=lambda r: r[0])
    return Table("turnaround_justification", "Justification after acquisition per site",
                 ("site", "requests", "acquired_before_validation", "share_pct"), tuple(out),
                 notes=("Images that arrived before the remote radiologist validated the indication (or with "
                        "no request). Reading is never held for an emergency; the deviation is recorded on the "
                        "case.",))


def practice_tables(f: DashboardFilter) -> dict[str, Table]:
    t = justification_table(f)
    return {t.name: t}
