"""The two-level (study seeds, then test images) paired bootstrap: weighted AUC, agreement with the
images-only bootstrap, exact enumeration of a tiny case, and coverage where seed variance dominates."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import norm

from medgan_aug.metrics.bootstrap import pooled_paired_bootstrap_delta
from medgan_aug.metrics.classification import evaluate_scores, rank_auc
from medgan_aug.metrics.hierarchical_bootstrap import hierarchical_paired_bootstrap_delta, resampled_auc


def _arms(seed: int = 0, n: int = 150, labels: int = 5, seeds: int = 3):
    rng = np.random.default_rng(seed)
    t = (rng.random((n, labels)) < 0.2).astype(float)
    t[0], t[1] = 1, 0
    t[:, -1] = 0
    t[2, -1] = 1  # one positive: single-class in about a third of the resamples
    a = [np.round(rng.random((n, labels)) * 0.8 + 0.15 * t, 2) for _ in range(seeds)]  # rounded: ties
    b = [np.round(rng.random((n, labels)) * 0.7 + 0.3 * t, 2) for _ in range(seeds)]
    return t, a, b


def test_resampled_auc_equals_auc_of_the_repeated_rows():
    t, a, _ = _arms()
    rng = np.random.default_rng(1)
    rows = rng.integers(0, len(t), size=(6, len(t)))
    counts = np.stack([np.bincount(r, minlength=len(t)) for r in rows])
    ours = resampled_auc(t, a[0], counts)
    reference = rank_auc(t[rows], a[0][rows], axis=1)
    assert np.array_equal(np.isnan(ours), np.isnan(reference)) and np.isnan(ours[:, -1]).any()
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-12)
    full = resampled_auc(t, a[0], np.ones(len(t)))
    assert np.nanmean(full) == pytest.approx(evaluate_scores(t, a[0])["auc"], abs=1e-12)
    with pytest.raises(ValueError, match="weights must be non-negative"):
        resampled_auc(t, a[0], -np.ones(len(t)))


def test_images_only_equals_the_pooled_bootstrap_and_two_levels_point_estimate_is_the_seed_mean():
    t, a, b = _arms()
    pooled = pooled_paired_bootstrap_delta(t, a, b, n_boot=300, seed=4)
    images = hierarchical_paired_bootstrap_delta(t, a, b, n_boot=300, seed=4, resample_seeds=False)
    for key in ("delta", "ci_low", "ci_high", "n_valid_boot", "mean_a", "mean_b"):
        assert images[key] == pytest.approx(pooled[key], abs=1e-12), key
    two = hierarchical_paired_bootstrap_delta(t, a, b, n_boot=300, seed=4)
    per_seed = [evaluate_scores(t, sb)["auc"] - evaluate_scores(t, sa)["auc"] for sa, sb in zip(a, b)]
    assert two["per_seed_delta"] == pytest.approx(per_seed, abs=1e-12)
    assert two["delta"] == pytest.approx(np.mean(per_seed), abs=1e-12)
    assert two["skipped_labels"] == [] and two["n_seeds"] == 3
    assert 0 < two["n_valid_boot"] <= 300 and np.isnan(two["replicates"]).sum() == 300 - two["n_valid_boot"]
    acc = hierarchical_paired_bootstrap_delta(t, a, b, metric="acc", n_boot=50, seed=0)
    per_seed_acc = [evaluate_scores(t, sb)["acc"] - evaluate_scores(t, sa)["acc"] for sa, sb in zip(a, b)]
    assert acc["delta"] == pytest.approx(np.mean(per_seed_acc)) and acc["n_valid_boot"] == 50


def test_classifier_seeds_are_averaged_within_a_study_seed():
    t, a, b = _arms(seeds=4)
    nested_a, nested_b = [a[:2], a[2:]], [np.stack(b[:2]), [b[2], b[3]]]  # lists or (C, N, L) arrays
    out = hierarchical_paired_bootstrap_delta(t, nested_a, nested_b, n_boot=100, seed=0)
    auc = [evaluate_scores(t, s)["auc"] for s in a], [evaluate_scores(t, s)["auc"] for s in b]
    expected = [np.mean(auc[1][:2]) - np.mean(auc[0][:2]), np.mean(auc[1][2:]) - np.mean(auc[0][2:])]
    assert out["per_seed_delta"] == pytest.approx(expected, abs=1e-12)
    assert out["n_classifier_seeds_a"] == [2, 2] and out["n_seeds"] == 2
    # one classifier seed per arm and study seed, unequal counts between arms are fine too
    uneven = hierarchical_paired_bootstrap_delta(t, [a[0], a[1]], [b[:3], b[3]], n_boot=20, seed=0)
    assert uneven["n_classifier_seeds_b"] == [3, 1]


def test_arguments_are_checked_by_name():
    t, a, b = _arms()
    with pytest.raises(ValueError, match="images must be one of"):
        hierarchical_paired_bootstrap_delta(t, a, b, images="nested")
    with pytest.raises(ValueError, match="equal length"):
        hierarchical_paired_bootstrap_delta(t, a, b[:2])
    with pytest.raises(ValueError, match="n_boot"):
        hierarchical_paired_bootstrap_delta(t, a, b, n_boot=0)
    with pytest.raises(ValueError, match=r"scores_b\[1\]"):
        hierarchical_paired_bootstrap_delta(t, a, [b[0], np.zeros((2, 2, 2, 2)), b[2]])
    with pytest.raises(ValueError, match="no finding has both classes"):
        hierarchical_paired_bootstrap_delta(np.zeros_like(t), a, b)


def _exact_distribution(t, a, b, images):
    """Every equally likely (seed tuple, image tuple(s)) of the two-level bootstrap, and its replicate
    (one finding)."""
    n_seeds, n = len(a), len(t)
    tuples = np.array(list(itertools.product(range(n), repeat=n)))  # every image resample, n^n
    counts = np.stack([np.bincount(r, minlength=n) for r in tuples]).astype(float)
    d = np.stack(
        [(resampled_auc(t, b[k], counts) - resampled_auc(t, a[k], counts))[:, 0] for k in range(n_seeds)]
    )
    seed_tuples = list(itertools.product(range(n_seeds), repeat=n_seeds))
    values = []
    for drawn in seed_tuples:
        if images == "shared":  # one image resample for every drawn seed
            values.append(np.mean([d[k] for k in drawn], axis=0))
        else:  # an independent image resample per drawn seed: all combinations
            grids = np.meshgrid(*[d[k] for k in drawn], indexing="ij")
            values.append(np.mean(grids, axis=0).ravel())
    values = np.concatenate(values)
    return values[np.isfinite(values)]  # resamples with a single class are dropped, as the bootstrap does


@pytest.mark.parametrize("images", ["shared", "per_seed"])
def test_two_level_distribution_matches_exact_enumeration(images):
    """2 seeds x 4 images, one finding: 4 x 256 (shared) or 4 x 256^2 (per seed) equally likely outcomes."""
    t = np.array([[1.0], [0.0], [1.0], [0.0]])
    a = [np.array([[0.6], [0.5], [0.4], [0.3]]), np.array([[0.7], [0.2], [0.5], [0.5]])]
    b = [np.array([[0.9], [0.1], [0.4], [0.3]]), np.array([[0.6], [0.6], [0.8], [0.1]])]
    exact = _exact_distribution(t, a, b, images)
    n_boot = 20_000
    out = hierarchical_paired_bootstrap_delta(t, a, b, n_boot=n_boot, seed=7, images=images)
    boot = out["replicates"][np.isfinite(out["replicates"])]
    # share of replicates dropped for a single class: P(all 4 draws from one class) per resample
    p_single = 2 * 0.5**4
    p_dropped = p_single if images == "shared" else 1 - (1 - p_single) ** 2
    assert 1 - boot.size / n_boot == pytest.approx(p_dropped, abs=4 * np.sqrt(p_dropped / n_boot))
    assert boot.mean() == pytest.approx(exact.mean(), abs=4 * exact.std() / np.sqrt(boot.size))
    assert boot.std() == pytest.approx(exact.std(), rel=0.03)
    # the whole distribution: sup |F_boot - F_exact| (DKW: P(> 0.015) < 3e-4 at this size)
    grid = np.unique(np.concatenate([exact, boot]))
    f_exact = np.searchsorted(np.sort(exact), grid, side="right") / exact.size
    f_boot = np.searchsorted(np.sort(boot), grid, side="right") / boot.size
    assert np.abs(f_exact - f_boot).max() < 0.015


def _simulated_study(rng, n_seeds=5, n=400, seed_sd=0.06, true_delta=0.02):
    """Seeds whose ΔAUC differ (sd ``seed_sd``) around ``true_delta``; both arms share image noise (paired)."""
    y = (rng.random((n, 2)) < 0.3).astype(float)
    base_auc = norm.cdf(1.0 / np.sqrt(2))  # score = d y + N(0, 1) noise: AUC = Phi(d / sqrt 2)
    a, b = [], []
    for _ in range(n_seeds):
        target = base_auc + true_delta + rng.normal(0, seed_sd)
        d_b = np.sqrt(2) * norm.ppf(target)
        shared = rng.normal(0, 0.8, size=(n, 2))  # the image's own difficulty, the same for both arms
        a.append(1.0 * y + shared + rng.normal(0, 0.6, size=(n, 2)))
        b.append(d_b * y + shared + rng.normal(0, 0.6, size=(n, 2)))
    return y, a, b


@pytest.mark.slow
def test_where_seed_variance_dominates_two_levels_are_wider_and_cover_the_true_delta():
    rng = np.random.default_rng(11)
    covered = {"two": 0, "images": 0}
    repeats, true_delta = 40, 0.02
    for _ in range(repeats):
        y, a, b = _simulated_study(rng, true_delta=true_delta)
        seed = int(rng.integers(1 << 30))
        two = hierarchical_paired_bootstrap_delta(y, a, b, n_boot=400, seed=seed)
        images = hierarchical_paired_bootstrap_delta(y, a, b, n_boot=400, seed=seed, resample_seeds=False)
        assert two["ci_high"] - two["ci_low"] > 1.3 * (images["ci_high"] - images["ci_low"])
        covered["two"] += two["ci_low"] <= true_delta <= two["ci_high"]
        covered["images"] += images["ci_low"] <= true_delta <= images["ci_high"]
    # percentile bootstrap over 5 seeds undercovers a little (variance x 4/5); images-only far more
    assert covered["two"] / repeats >= 0.8
    assert covered["images"] / repeats <= 0.6


def test_common_random_numbers_align_replicates_of_comparisons_on_the_same_seeds_and_images():
    t, a, b = _arms()
    one = hierarchical_paired_bootstrap_delta(t, a, b, n_boot=200, seed=3)
    same = hierarchical_paired_bootstrap_delta(t, a, a, n_boot=200, seed=3)
    assert np.array_equal(np.isnan(one["replicates"]), np.isnan(same["replicates"]))
    assert np.nanmax(np.abs(same["replicates"])) == 0.0 and same["p_value"] == 1.0
    swapped = hierarchical_paired_bootstrap_delta(t, b, a, n_boot=200, seed=3)
    np.testing.assert_allclose(swapped["replicates"], -one["replicates"], atol=1e-12)


def test_patient_bootstrap_equals_the_image_bootstrap_when_every_patient_has_one_image():
    t, a, b = _arms()
    images = hierarchical_paired_bootstrap_delta(t, a, b, n_boot=200, seed=5)
    patients = hierarchical_paired_bootstrap_delta(
        t, a, b, n_boot=200, seed=5, clusters=[f"p{i:05d}" for i in range(len(t))][::-1]
    )
    np.testing.assert_array_equal(patients["replicates"], images["replicates"])
    assert (patients["ci_low"], patients["ci_high"]) == (images["ci_low"], images["ci_high"])
    assert images["resampled_unit"] == "images" and patients["resampled_unit"] == "patients"
    assert patients["n_clusters"] == len(t) and images["n_clusters"] == len(t)


def test_patient_bootstrap_is_wider_when_a_patients_images_move_together():
    """40 patients with 8 near-identical images each: resampling images treats 320 images as independent
    and gives an interval about sqrt(8) narrower than resampling the 40 patients."""
    rng = np.random.default_rng(11)
    patients, per_patient = 40, 8
    base_t = (rng.random((patients, 3)) < 0.4).astype(float)
    base_t[0], base_t[1] = 1, 0
    t = np.repeat(base_t, per_patient, axis=0)
    ids = np.repeat([f"nih{p:08d}" for p in range(patients)], per_patient)
    a = [np.repeat(rng.random((patients, 3)) * 0.7 + 0.3 * base_t, per_patient, axis=0) for _ in range(3)]
    b = [np.repeat(rng.random((patients, 3)) * 0.7 + 0.3 * base_t, per_patient, axis=0) for _ in range(3)]
    a = [s + rng.normal(0, 1e-3, s.shape) for s in a]  # images of a patient: nearly, not exactly, the same
    common = dict(n_boot=600, seed=2, resample_seeds=False)
    by_image = hierarchical_paired_bootstrap_delta(t, a, b, **common)
    by_patient = hierarchical_paired_bootstrap_delta(t, a, b, clusters=ids, **common)
    assert by_patient["delta"] == by_image["delta"]
    ratio = (by_patient["ci_high"] - by_patient["ci_low"]) / (by_image["ci_high"] - by_image["ci_low"])
    assert 2.0 < ratio < 4.0, ratio  # sqrt(8) = 2.83
    assert by_patient["n_clusters"] == patients


def test_patient_bootstrap_refuses_ids_that_do_not_fit_the_test_set():
    t, a, b = _arms()
    with pytest.raises(ValueError, match=r"one id per test image \(150\)"):
        hierarchical_paired_bootstrap_delta(t, a, b, n_boot=5, clusters=["p"] * 149)
    with pytest.raises(ValueError, match=r"no id for test image\(s\) \[3\]"):
        ids = ["p"] * 150
        ids[3] = None
        hierarchical_paired_bootstrap_delta(t, a, b, n_boot=5, clusters=ids)
