"""Metric numbers on hand-made inputs, agreement with medmnist's evaluator, paired bootstrap behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from medmnist.evaluator import getACC, getAUC
from sklearn.metrics import roc_auc_score

from medgan_aug.metrics.bootstrap import paired_bootstrap_delta, pooled_paired_bootstrap_delta
from medgan_aug.metrics.classification import evaluate_scores, rank_auc

ML = "multi-label, binary-class"
NAMES = ["atelectasis", "cardiomegaly", "hernia"]


def _targets() -> np.ndarray:
    # 8 images, 3 findings; "hernia" has no positive (single-class, as in nih1000's test split).
    return np.array(
        [[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=float
    )


def test_perfect_scores_give_auc_one_and_acc_one():
    t = _targets()
    out = evaluate_scores(t, 0.1 + 0.8 * t, ML, NAMES)
    assert out["auc"] == 1.0
    assert out["acc"] == 1.0
    assert out["auc_per_label"] == {"atelectasis": 1.0, "cardiomegaly": 1.0}


def test_reversed_scores_give_auc_zero():
    t = _targets()
    out = evaluate_scores(t, 0.9 - 0.8 * t, ML, NAMES)
    assert out["auc"] == 0.0
    # every prediction wrong on the two-class findings, right on hernia (all 0 predicted 0.9 -> wrong too)
    assert out["acc"] == 0.0


def test_single_class_finding_is_skipped_and_named_but_counted_in_acc():
    t = _targets()
    s = np.tile([0.7, 0.2, 0.3], (8, 1))
    s[:, 0] = [0.9, 0.1, 0.8, 0.2, 0.6, 0.4, 0.3, 0.7]  # atelectasis AUC = 1
    out = evaluate_scores(t, s, ML, NAMES)
    assert out["skipped_labels"] == ["hernia"]
    assert set(out["auc_per_label"]) == {"atelectasis", "cardiomegaly"}
    assert out["auc_per_label"]["cardiomegaly"] == 0.5  # constant scores
    assert out["auc"] == pytest.approx(0.75)
    assert out["n_evaluated_labels"] == 2 and out["n_samples"] == 8
    # ACC over all three findings, as medmnist's getACC: hernia predicted 0 everywhere -> 1.0
    acc_per = [np.mean((s[:, j] > 0.5) == t[:, j]) for j in range(3)]
    assert out["acc"] == pytest.approx(np.mean(acc_per))
    assert out["acc"] == pytest.approx(getACC(t, s, ML))
    assert not np.isnan(out["auc"])


def test_all_single_class_raises_clear_error():
    t = np.zeros((5, 2))
    with pytest.raises(ValueError, match="no finding has both classes"):
        evaluate_scores(t, np.random.default_rng(0).random((5, 2)), ML, ["a", "b"])


def test_bad_inputs_raise():
    t = _targets()
    with pytest.raises(ValueError, match="NaN"):
        evaluate_scores(t, np.full(t.shape, np.nan), ML)
    with pytest.raises(ValueError, match="same shape"):
        evaluate_scores(t, np.zeros((8, 2)), ML)
    with pytest.raises(ValueError, match="label_names"):
        evaluate_scores(t, 0.1 + 0.8 * t, ML, ["a"])
    with pytest.raises(ValueError, match="task"):
        evaluate_scores(t, t, "segmentation")
    with pytest.raises(ValueError, match="only 0 and 1"):
        evaluate_scores(t * 2, t, ML)


def test_matches_medmnist_evaluator_where_comparable():
    rng = np.random.default_rng(1)
    # multi-label, every finding two-class
    t = (rng.random((60, 5)) < 0.3).astype(float)
    t[0], t[1] = 1, 0
    s = rng.random((60, 5))
    out = evaluate_scores(t, s, ML)
    assert out["auc"] == pytest.approx(getAUC(t, s, ML), abs=1e-12)
    assert out["acc"] == pytest.approx(getACC(t, s, ML), abs=1e-12)
    # binary-class: (N, 1) labels; (N, 1) sigmoid scores and (N, 2) softmax scores
    tb = (rng.random((50, 1)) < 0.4).astype(float)
    sb = rng.random((50, 1))
    out = evaluate_scores(tb, sb, "binary-class")
    assert out["auc"] == pytest.approx(getAUC(tb, sb, "binary-class"))
    assert out["acc"] == pytest.approx(getACC(tb, sb, "binary-class"))
    s2 = np.hstack([1 - sb, sb])
    assert evaluate_scores(tb, s2, "binary-class")["auc"] == pytest.approx(getAUC(tb, s2, "binary-class"))
    # multi-class: medmnist takes class indices (N, 1); we take one-hot or indices
    idx = rng.integers(0, 4, size=(80, 1))
    idx[:4, 0] = [0, 1, 2, 3]
    sm = rng.random((80, 4))
    sm /= sm.sum(axis=1, keepdims=True)
    onehot = np.eye(4)[idx[:, 0]]
    for targets in (onehot, idx):
        out = evaluate_scores(targets, sm, "multi-class")
        assert out["auc"] == pytest.approx(getAUC(idx, sm, "multi-class"))
        assert out["acc"] == pytest.approx(getACC(idx, sm, "multi-class"))


def test_rank_auc_equals_sklearn_with_ties_and_duplicates():
    rng = np.random.default_rng(2)
    t = (rng.random((40, 6)) < 0.35).astype(float)
    t[0], t[1] = 1, 0
    s = np.round(rng.random((40, 6)), 1)  # many ties
    idx = rng.integers(0, 40, size=40)  # duplicated rows, as in a bootstrap resample
    tb, sb = t[idx], s[idx]
    ours = rank_auc(tb, sb, axis=0)
    for j in range(6):
        if np.unique(tb[:, j]).size == 2:
            assert ours[j] == pytest.approx(roc_auc_score(tb[:, j], sb[:, j]), abs=1e-12)
        else:
            assert np.isnan(ours[j])


def _study_like(seed: int = 0, n: int = 120):
    rng = np.random.default_rng(seed)
    t = (rng.random((n, 4)) < 0.25).astype(float)
    t[:2] = [[1, 1, 1, 0], [0, 0, 0, 0]]
    t[:, 3] = 0
    t[2, 3] = 1  # finding 3 has a single positive: single-class in many resamples
    weak = np.clip(rng.random((n, 4)) * 0.8 + 0.1 * t, 0, 1)
    strong = np.clip(rng.random((n, 4)) * 0.5 + 0.45 * t, 0, 1)
    return t, weak, strong


def test_bootstrap_identical_arms_give_zero_delta_and_zero_interval():
    t, weak, _ = _study_like()
    out = paired_bootstrap_delta(t, weak, weak.copy(), n_boot=200, seed=3)
    assert out["delta"] == 0.0
    assert out["ci_low"] == 0.0 and out["ci_high"] == 0.0
    assert out["n_valid_boot"] == 200


def test_bootstrap_clearly_better_arm_excludes_zero_and_is_seeded():
    t, weak, strong = _study_like()
    out = paired_bootstrap_delta(t, weak, strong, n_boot=300, seed=0)
    assert out["delta"] == pytest.approx(
        evaluate_scores(t, strong)["auc"] - evaluate_scores(t, weak)["auc"], abs=1e-12
    )
    assert out["delta"] > 0.2
    assert 0 < out["ci_low"] < out["delta"] < out["ci_high"]
    # reversed arms: mirror image
    rev = paired_bootstrap_delta(t, strong, weak, n_boot=300, seed=0)
    assert rev["ci_high"] < 0 and rev["delta"] == pytest.approx(-out["delta"])
    assert paired_bootstrap_delta(t, weak, strong, n_boot=300, seed=0) == out
    assert paired_bootstrap_delta(t, weak, strong, n_boot=300, seed=1)["ci_low"] != out["ci_low"]
    acc = paired_bootstrap_delta(t, weak, strong, metric="acc", n_boot=100, seed=0)
    assert np.isfinite(acc["delta"]) and acc["ci_low"] <= acc["delta"] <= acc["ci_high"]


def test_bootstrap_skips_single_class_findings_consistently_for_both_arms():
    """Reference: resample rows with the same generator, skip findings single-class in the resample for
    both arms, average sklearn AUCs over the remaining findings."""
    t, weak, strong = _study_like(seed=4, n=60)
    n_boot, seed = 60, 7
    out = paired_bootstrap_delta(t, weak, strong, n_boot=n_boot, seed=seed)
    idx = np.random.default_rng(seed).integers(0, len(t), size=(n_boot, len(t)))
    deltas, skipped_somewhere = [], False
    for rows in idx:
        tb = t[rows]
        keep = [j for j in range(4) if np.unique(tb[:, j]).size == 2]
        skipped_somewhere |= len(keep) < 4
        auc = [np.mean([roc_auc_score(tb[:, j], s[rows, j]) for j in keep]) for s in (weak, strong)]
        deltas.append(auc[1] - auc[0])
    assert skipped_somewhere  # the rare finding really drops out of some resamples
    low, high = np.quantile(deltas, [0.025, 0.975])
    assert out["ci_low"] == pytest.approx(low, abs=1e-12)
    assert out["ci_high"] == pytest.approx(high, abs=1e-12)


def test_bootstrap_names_full_set_skips_and_drops_invalid_resamples():
    t = np.zeros((30, 2))
    t[0, 0] = 1  # finding "a": one positive; finding "b": none
    rng = np.random.default_rng(0)
    a, b = rng.random((30, 2)), rng.random((30, 2))
    out = paired_bootstrap_delta(t, a, b, n_boot=200, seed=0, label_names=["a", "b"])
    assert out["skipped_labels"] == ["b"]
    # the only positive row is absent from a resample with probability (29/30)^30 ~ 0.36
    assert 80 < out["n_valid_boot"] < 180
    with pytest.raises(ValueError, match="no finding has both classes"):
        paired_bootstrap_delta(np.zeros((30, 2)), a, b, n_boot=10)


def test_pooled_bootstrap_over_seeds():
    t, weak, strong = _study_like()
    single = paired_bootstrap_delta(t, weak, strong, n_boot=200, seed=5)
    pooled_same = pooled_paired_bootstrap_delta(t, [weak] * 3, [strong] * 3, n_boot=200, seed=5)
    for key in ("delta", "ci_low", "ci_high"):
        assert pooled_same[key] == pytest.approx(single[key], abs=1e-12)
    # two seeds: one with a gain, one with no change -> the pooled delta is the mean of the per-seed deltas
    pooled = pooled_paired_bootstrap_delta(t, [weak, weak], [strong, weak], n_boot=200, seed=5)
    assert pooled["delta"] == pytest.approx(single["delta"] / 2)
    assert pooled["n_seeds"] == 2
    assert 0 < pooled["ci_low"] < pooled["ci_high"]
    with pytest.raises(ValueError, match="equal length"):
        pooled_paired_bootstrap_delta(t, [weak, weak], [strong], n_boot=10)
    with pytest.raises(ValueError, match="metric"):
        paired_bootstrap_delta(t, weak, strong, metric="f1")
    with pytest.raises(ValueError, match="n_boot"):
        paired_bootstrap_delta(t, weak, strong, n_boot=0)
