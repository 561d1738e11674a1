"""The minimum detectable effect of the study's paired comparisons: exact power, closed form, seed counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from medgan_aug.metrics.power import (
    closed_form_detectable_effect,
    minimum_detectable_effect,
    paired_t_power,
    seeds_needed,
)


def test_closed_form_is_the_textbook_paired_t_formula():
    # 5 seeds, per-seed sd 0.031 (NIH1000's study): (t_.975,4 + t_.8,4) * sd / sqrt(5)
    expected = (stats.t.ppf(0.975, 4) + stats.t.ppf(0.8, 4)) * 0.031 / math.sqrt(5)
    assert closed_form_detectable_effect(0.031, 5) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(0.0515, abs=5e-4)


@pytest.mark.parametrize("n_seeds", [2, 3, 5, 10, 40])
def test_exact_effect_has_the_asked_power_and_the_closed_form_is_close(n_seeds):
    sd = 0.031
    exact = minimum_detectable_effect(sd, n_seeds)
    assert paired_t_power(exact, sd, n_seeds) == pytest.approx(0.8, abs=1e-9)
    approx = closed_form_detectable_effect(sd, n_seeds)
    if n_seeds >= 4:
        assert abs(exact / approx - 1) < 0.03
    else:  # few seeds: the shifted central t is optimistic
        assert exact / approx - 1 > 0.05
    # large K: the normal closed form (z_.975 + z_.8) sd / sqrt(K)
    if n_seeds == 40:
        z = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd / math.sqrt(n_seeds)
        assert exact == pytest.approx(z, rel=0.03)


def test_power_matches_a_simulated_paired_t_test():
    rng = np.random.default_rng(0)
    sd, n_seeds = 0.02, 5
    effect = minimum_detectable_effect(sd, n_seeds)
    d = rng.normal(effect, sd, size=(20000, n_seeds))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n_seeds))
    rejected = np.abs(t) > stats.t.ppf(0.975, n_seeds - 1)
    assert rejected.mean() == pytest.approx(0.8, abs=0.01)


def test_detectable_effect_scales_with_sd_and_falls_with_seeds():
    assert minimum_detectable_effect(0.062, 5) == pytest.approx(2 * minimum_detectable_effect(0.031, 5))
    values = [minimum_detectable_effect(0.03, k) for k in (2, 3, 5, 10, 20)]
    assert values == sorted(values, reverse=True)
    assert minimum_detectable_effect(0.0, 5) == 0.0
    assert math.isnan(minimum_detectable_effect(float("nan"), 5))


def test_seeds_needed_is_the_fewest_that_reach_the_effect():
    sd = 0.031
    n = seeds_needed(0.03, sd)
    assert minimum_detectable_effect(sd, n) <= 0.03 < minimum_detectable_effect(sd, n - 1)
    assert seeds_needed(1.0, sd) == 2
    assert seeds_needed(0.0515, sd) in (5, 6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n_seeds must be an integer >= 2"):
        minimum_detectable_effect(0.03, 1)
    with pytest.raises(ValueError, match="sd must be a finite number >= 0"):
        minimum_detectable_effect(-1.0, 5)
    with pytest.raises(ValueError, match="power must be in"):
        minimum_detectable_effect(0.03, 5, power=1.0)
    with pytest.raises(ValueError, match="effect must be a finite number > 0"):
        seeds_needed(0.0, 0.03)
    with pytest.raises(ValueError, match="more than 100 seeds"):
        seeds_needed(1e-4, 0.03, max_seeds=100)
