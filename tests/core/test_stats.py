"""apps.core.stats.percentile: the interpolation of PostgreSQL's percentile_cont (and numpy's default)."""

from __future__ import annotations

import numpy as np
import pytest

from apps.core.stats import percentile


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([7.0], 0.5, 7.0),
    ([7.0], 0.99, 7.0),
    ([1.0, 2.0], 0.5, 1.5),
    ([1.0, 2.0, 3.0, 4.0], 0.9, 3.7),
    ([4.0, 1.0, 3.0, 2.0], 0.9, 3.7),  # unsorted input is sorted first
    ([10.0, 20.0, 30.0], 0.0, 10.0),
    ([10.0, 20.0, 30.0], 1.0, 30.0),
    ([10.0, 20.0, 30.0], 0.5, 20.0),
    (range(101), 0.99, 99.0),
])
def test_percentile_table(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_is_numpy_default_method():
    rng = np.random.default_rng(7)
    for n in (1, 2, 3, 10, 999):
        values = list(rng.exponential(60.0, n))
        for q in (0.5, 0.9, 0.95, 0.99):
            assert percentile(values, q) == pytest.approx(float(np.percentile(values, q * 100)))


@pytest.mark.parametrize(("values", "q"), [([], 0.5), ([1.0], -0.1), ([1.0], 1.5)])
def test_percentile_refuses_no_values_and_a_quantile_outside_0_1(values, q):
    with pytest.raises(ValueError):
        percentile(values, q)
