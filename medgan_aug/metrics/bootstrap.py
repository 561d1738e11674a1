"""Paired bootstrap intervals for metric differences between two models scored on the same test images
(Efron & Tibshirani, An Introduction to the Bootstrap, 1993, ch. 13): test images resampled, seeds fixed.
Computed by :mod:`medgan_aug.metrics.hierarchical_bootstrap` (its images-only case).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medgan_aug.metrics.hierarchical_bootstrap import hierarchical_paired_bootstrap_delta
from medgan_aug.utils.tasks import MULTI_LABEL

__all__ = ["pooled_paired_bootstrap_delta", "paired_bootstrap_delta"]


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
    chunk: int | None = None,
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

    This is the images-only case of :func:`medgan_aug.metrics.hierarchical_paired_bootstrap_delta`
    (``resample_seeds=False``), which computes it: the seeds are not resampled, so the interval covers the
    test images only. (Not scipy.stats.bootstrap: one replicate in which no finding has both classes makes
    its interval NaN.)

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
        chunk: unused (the replicates are evaluated in memory-bounded blocks); kept so callers that pass
            it keep working.

    Returns:
        dict with ``delta``, ``ci_low``, ``ci_high``, ``n_valid_boot``, ``n_boot``, ``n_seeds``,
        ``metric``, ``confidence``, ``mean_a``, ``mean_b`` (seed-mean metric of each arm on the full set),
        and ``skipped_labels`` (names of findings single-class on the full set, left out of ``delta``).
    """
    for k, entry in enumerate((*scores_a, *scores_b)):
        if np.ndim(entry) not in (1, 2):  # one score array per seed (no classifier seeds here)
            arm, index = ("scores_a", k) if k < len(scores_a) else ("scores_b", k - len(scores_a))
            raise ValueError(f"{arm}[{index}] must be one score array, got shape {np.shape(entry)}")
    result = hierarchical_paired_bootstrap_delta(
        targets,
        scores_a,
        scores_b,
        metric=metric,
        n_boot=n_boot,
        seed=seed,
        task=task,
        confidence=confidence,
        label_names=label_names,
        resample_seeds=False,
    )
    keys = ("delta", "ci_low", "ci_high", "n_valid_boot", "n_boot", "n_seeds", "metric", "confidence")
    return {**{k: result[k] for k in keys}, "mean_a": result["mean_a"], "mean_b": result["mean_b"],
            "skipped_labels": result["skipped_labels"]}  # fmt: skip


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
