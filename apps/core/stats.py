"""The one percentile of the platform: linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) of ``values``, interpolated linearly between the two closest ranks: the
    figure PostgreSQL's ``percentile_cont`` and numpy's default method give, so a dashboard computed in Python
    (SQLite) shows what PostgreSQL shows. No value is an error, as for ``statistics.median``."""
    s = sorted(values)
    if not s:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} outside [0, 1]")
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)
