"""Paired bootstrap intervals for metric differences between two models scored on the same test images
(Efron & Tibshirani, An Introduction to the Bootstrap, 1993, ch. 13; pooled over seeds by summing
per-seed resamples).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medgan_aug.metrics.classification import METRICS, default_label_names, prepare_targets_scores, rank_auc
from medgan_aug.utils.tasks import BINARY, MULTI_LABEL

__all__ = ["pooled_paired_bootstrap_delta", "paired_bootstrap_delta"]


def _replicate_metric(t: np.ndarray, s: np.ndarray, task: str, metric: str, valid: np.ndarray) -> np.ndarray:
    """Metric per replicate. t, s: (B, N, L); valid: (B, L) finding has both classes. Returns (B,)."""
    if metric == "acc":
        if task in (MULTI_LABEL, BINARY):
            return ((s > 0.5) == (t == 1)).mean(axis=(1, 2))
        return (np.argmax(s, axis=2) == np.argmax(t, axis=2)).mean(axis=1)
    auc = rank_auc(t, s, axis=1)  # (B, L)
    with np.errstate(invalid="ignore"):
        return np.where(valid, auc, 0.0).sum(axis=1) / valid.sum(axis=1)


# Not scipy.stats.bootstrap: one replicate in which no finding has both classes (no AUC) makes its interval
# NaN; here such replicates are dropped and counted (n_valid_boot), and single-class findings skipped per replicate.
def pooled_paired_bootstrap_delta(
    targets: Any,
    scores_a: Sequence[Any],
    scores_b: Sequence[Any],
    *,
    metric: str = "auc",
    n_boot: int = 1000,
    seed: int = 0,
    task: str = MULTI_LABEL,
    confidence: float = 0.95,
    label_names: Sequence[str] | None = None,
    chunk: int = 100,
) -> dict[str, Any]:
    """Paired bootstrap of ``metric(b) - metric(a)`` pooled over seeds, on shared test images.

    For each seed k the two arms ``scores_a[k]`` (e.g. real only) and ``scores_b[k]`` (e.g. real +
    synthetic) were scored on the same N test images with targets ``targets``. Each bootstrap replicate
    draws N test rows with replacement once, evaluates every seed's two arms on those rows and averages
    the per-seed differences; the interval is the percentile interval of these replicates (Efron &
    Tibshirani 1993, ch. 13). For AUC, findings with a single class in a replicate are left out of the
    mean for every arm and seed alike; a replicate with no two-class finding is dropped (counted by
    ``n_valid_boot``). The point estimate ``delta`` is the mean per-seed difference on the full test set,
    with findings single-class there left out as in :func:`evaluate_scores`.

    Args:
        targets: (N, L) test targets, shared by all arrays of scores.
        scores_a: sequence of K (N, L) score arrays, baseline arm, one per seed.
        scores_b: sequence of K (N, L) score arrays, compared arm, same seeds in the same order.
        metric: "auc" or "acc".
        n_boot: bootstrap replicates.
        seed: seed of the resampling.
        task: medmnist task string.
        confidence: central interval coverage (0.95 -> 2.5th and 97.5th percentiles).
        label_names: names of the L findings, used in ``skipped_labels`` (default "0", "1", ...).
        chunk: at most this many replicates are evaluated at once (lowered for large test sets).

    Returns:
        dict with ``delta``, ``ci_low``, ``ci_high``, ``n_valid_boot``, ``n_boot``, ``n_seeds``,
        ``metric``, ``confidence``, ``mean_a``, ``mean_b`` (seed-mean metric of each arm on the full set),
        and ``skipped_labels`` (names of findings single-class on the full set, left out of ``delta``).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if len(scores_a) != len(scores_b) or len(scores_a) == 0:
        raise ValueError(
            f"scores_a and scores_b must be non-empty sequences of equal length (one array per "
            f"seed), got {len(scores_a)} and {len(scores_b)}"
        )
    prepared_a, prepared_b = [], []
    t = None
    for k, (sa, sb) in enumerate(zip(scores_a, scores_b)):
        t, a = prepare_targets_scores(targets, sa, task, f"scores_a[{k}]")
        _, b = prepare_targets_scores(targets, sb, task, f"scores_b[{k}]")
        prepared_a.append(a)
        prepared_b.append(b)
    assert t is not None
    A = np.stack(prepared_a)  # (K, N, L)
    B = np.stack(prepared_b)
    n, n_labels = t.shape
    names = default_label_names(label_names, n_labels, task)
    chunk = max(1, min(int(chunk), 2_000_000 // (n * n_labels)))

    full_valid = (t.min(axis=0) == 0) & (t.max(axis=0) == 1)
    if metric == "auc" and not full_valid.any():
        raise ValueError("no finding has both classes in the test targets: AUC is undefined")
    both = np.concatenate([A, B])  # (2K, N, L)
    full = _replicate_metric(
        np.broadcast_to(t, both.shape),
        both,
        task,
        metric,
        np.broadcast_to(full_valid, (both.shape[0], n_labels)),
    )
    k = A.shape[0]
    mean_a, mean_b = float(full[:k].mean()), float(full[k:].mean())

    rng = np.random.default_rng(seed)
    deltas = []
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(m, n))  # (m, N)
        tb = t[idx]  # (m, N, L)
        valid = (tb.min(axis=1) == 0) & (tb.max(axis=1) == 1)  # (m, L)
        per_seed = np.empty((m, k))
        for j in range(k):
            ma = _replicate_metric(tb, A[j][idx], task, metric, valid)
            mb = _replicate_metric(tb, B[j][idx], task, metric, valid)
            per_seed[:, j] = mb - ma
        d = per_seed.mean(axis=1)
        if metric == "auc":
            d = d[valid.any(axis=1)]
        deltas.append(d)
    boot = np.concatenate(deltas)
    alpha = (1 - confidence) / 2
    if boot.size:
        low, high = np.quantile(boot, [alpha, 1 - alpha])
    else:
        low = high = float("nan")
    return {
        "delta": mean_b - mean_a,
        "ci_low": float(low),
        "ci_high": float(high),
        "n_valid_boot": int(boot.size),
        "n_boot": int(n_boot),
        "n_seeds": int(k),
        "metric": metric,
        "confidence": float(confidence),
        "mean_a": mean_a,
        "mean_b": mean_b,
        "skipped_labels": [names[j] for j in np.flatnonzero(~full_valid)] if metric == "auc" else [],
    }


def paired_bootstrap_delta(
    targets: Any,
    scores_a: Any,
    scores_b: Any,
    *,
    metric: str = "auc",
    n_boot: int = 1000,
    seed: int = 0,
    task: str = MULTI_LABEL,
    confidence: float = 0.95,
    label_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Paired bootstrap CI of ``metric(scores_b) - metric(scores_a)`` on the same test images.

    Resamples test rows with replacement ``n_boot`` times, evaluates both arms on each resample, and
    returns the percentile interval (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993).
    Findings single-class in a resample are skipped for both arms alike. One-seed case of
    :func:`pooled_paired_bootstrap_delta`; see there for the returned keys.
    """
    return pooled_paired_bootstrap_delta(
        targets,
        [scores_a],
        [scores_b],
        metric=metric,
        n_boot=n_boot,
        seed=seed,
        task=task,
        confidence=confidence,
        label_names=label_names,
    )
