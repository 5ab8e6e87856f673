"""The live dashboard has PostgreSQL-only statements (turnaround percentiles over GROUPING SETS, per-shift
counts by a day-bucketed hash join) and portable fallbacks that the embedded SQLite demo runs. On
PostgreSQL both are run here on the same data and must agree; on SQLite only the fallbacks exist, and
the hand-computed tests (``test_selectors``, ``test_aggregates``) check them in the SQLite pass of
``make test``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from django.db import connection

from apps.dashboards.selectors import STAGES, cases_in_scope
from apps.dashboards.selectors.load import _shift_case_counts_orm, _shift_case_counts_postgresql
from apps.dashboards.selectors.turnaround import _turnaround_rows_postgresql, _turnaround_rows_python
from apps.rosters.models import Shift
from tests.dashboards.test_aggregates import _filters, dst  # noqa: F401  (fixture)
from tests.dashboards.test_selectors import data  # noqa: F401  (fixture)

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="compares with the PostgreSQL statements")


def _comparable(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Rows keyed by breakdown; groups without any measured stage left out (PostgreSQL's grand total
    row exists even over no case, the Python fallback's does not)."""
    out = {}
    for r in rows:
        figures = {k: v for k, v in r.items() if k.endswith(("_n", "_p50", "_p90"))}
        if not any(r[f"{key}_n"] for key, *_ in STAGES):
            continue
        out[(r["_dim"], r["site_id"], r["modality_id"], r["assigned_line_id"], r["urgency"])] = figures
    return out


def _filters_of(fixture: str, request: Any) -> dict[str, Any]:
    if fixture == "data":
        _m, f = request.getfixturevalue("data")
        return {"region": f, "modality": replace(f, modality="CT"), "site": replace(f, site_id=_m.sites["A"].pk)}
    m, f, _cases, _s25 = request.getfixturevalue("dst")
    return _filters(m, f)


@pytest.mark.parametrize("fixture", ["data", "dst"])
def test_turnaround_fallback_equals_the_postgresql_statement(db: Any, fixture: str, request: Any) -> None:
    compared = 0
    for name, f in _filters_of(fixture, request).items():
        cases = cases_in_scope(f)
        pg, py = _comparable(_turnaround_rows_postgresql(cases)), _comparable(_turnaround_rows_python(cases))
        assert pg.keys() == py.keys(), name
        for key, figures in pg.items():
            assert figures == pytest.approx(py[key]), (name, key)
        compared += len(pg)
    assert compared


@pytest.mark.parametrize("fixture", ["data", "dst"])
def test_shift_counts_fallback_equals_the_postgresql_statement(db: Any, fixture: str, request: Any) -> None:
    counted = 0
    for name, f in _filters_of(fixture, request).items():
        shifts = Shift.objects.filter(line__region_id=f.region_id, start__lt=f.end, end__gt=f.start)
        cases = cases_in_scope(f)
        counts = _shift_case_counts_postgresql(shifts, cases)
        assert counts == _shift_case_counts_orm(shifts, cases), name
        counted += sum(counts.values())
    assert counted
