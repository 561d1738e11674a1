"""Bootstrap p-values and intervals, Holm's adjustment, the paired t-interval and variance components, on
hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from medgan_aug.metrics.inference import (
    bootstrap_p_value,
    holm_adjust,
    paired_t_interval,
    percentile_interval,
    variance_components,
)


def test_holm_matches_a_hand_computed_example():
    # sorted: 0.005 x4 = 0.02; 0.01 x3 = 0.03; 0.03 x2 = 0.06; 0.04 x1 = 0.04 -> max(0.06, 0.04) = 0.06
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = holm_adjust([0.2, float("nan"), 0.01])  # NaN stays out of the family: m = 2
    assert adjusted[0] == pytest.approx(0.2) and np.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)
    assert holm_adjust([0.6, 0.7]) == [1.0, 1.0] and holm_adjust([]) == []
    with pytest.raises(ValueError, match="p_values must lie in"):
        holm_adjust([1.5])


def test_holm_agrees_with_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(0).random(12) ** 3
    expected = multitest.multipletests(p, method="holm")[1]
    np.testing.assert_allclose(holm_adjust(p.tolist()), expected, rtol=1e-12)


def test_bootstrap_p_value_is_two_sided_with_the_plus_one_correction():
    assert bootstrap_p_value(np.linspace(0.1, 1, 99)) == pytest.approx(2 * 1 / 100)
    assert bootstrap_p_value(-np.linspace(0.1, 1, 99)) == pytest.approx(2 * 1 / 100)
    # 9 of 99 at or below zero: 2 (1 + 9) / 100
    values = np.concatenate([-np.ones(9), np.ones(90)])
    assert bootstrap_p_value(values) == pytest.approx(0.2)
    assert bootstrap_p_value(np.zeros(50)) == 1.0  # capped
    assert bootstrap_p_value([np.nan, 1.0, 2.0, 3.0]) == pytest.approx(2 / 4)  # NaN left out: B = 3
    assert np.isnan(bootstrap_p_value([np.nan]))


def test_percentile_interval():
    low, high = percentile_interval(np.arange(101.0), 0.9)
    assert (low, high) == pytest.approx((5.0, 95.0))
    with pytest.raises(ValueError, match="confidence"):
        percentile_interval([1.0], 1.0)


def test_paired_t_interval_equals_scipy():
    d = [0.03, -0.01, 0.05, 0.02, 0.04]
    expected = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert paired_t_interval(d) == pytest.approx((expected.low, expected.high))
    # by hand: mean 0.026, sd 0.02302, t(4, 0.975) = 2.776
    assert paired_t_interval(d)[0] == pytest.approx(0.026 - 2.7764 * 0.023022 / np.sqrt(5), abs=1e-4)
    assert all(np.isnan(paired_t_interval([0.1])))


def test_variance_components_hand_example_and_unbalanced_simulation():
    # means 2, 6, 10; MSB = 2 (16 + 0 + 16) / 2 = 32; MSW = (2 + 2 + 2) / 3 = 2; between = (32 - 2) / 2
    out = variance_components([[1, 3], [5, 7], [9, 11]])
    assert (out["between"], out["within"], out["n0"]) == pytest.approx((15.0, 2.0, 2.0))
    assert out["share_between"] == pytest.approx(15 / 17)
    negative = variance_components([[0, 10], [5, 5.5]])  # groups closer than the within spread
    assert negative["between_raw"] < 0 and negative["between"] == 0.0
    rng = np.random.default_rng(0)
    groups = [rng.normal(rng.normal(0, 2.0), 1.0, size=rng.integers(2, 6)) for _ in range(3000)]
    sim = variance_components(groups)
    assert sim["between"] == pytest.approx(4.0, rel=0.08) and sim["within"] == pytest.approx(1.0, rel=0.05)
    with pytest.raises(ValueError, match="two values or more"):
        variance_components([[1.0], [2.0]])
