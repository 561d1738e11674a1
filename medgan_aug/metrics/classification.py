"""Classification metrics as MedMNIST reports them, and paired bootstrap confidence intervals.

:func:`evaluate_scores` follows ``medmnist.evaluator.getAUC`` / ``getACC`` (MedMNIST v2, Yang et al.,
Scientific Data 2023) with one deliberate difference: a finding (or class) with a single class among the
evaluated targets has no defined AUC; medmnist's evaluator lets ``roc_auc_score`` raise there, we skip it,
average AUC over the remaining findings and name the skipped ones in ``"skipped_labels"``.

:func:`paired_bootstrap_delta` and :func:`pooled_paired_bootstrap_delta` give percentile bootstrap
confidence intervals (Efron & Tibshirani, "An Introduction to the Bootstrap", Chapman & Hall 1993,
ch. 13) for the difference in a metric between two classifiers scored on the same test images: test rows
are resampled once per replicate and both arms (and, pooled, all seeds) are evaluated on that same
resample, so the interval reflects the paired design.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from medgan_aug.utils.tasks import BINARY, MULTI_LABEL, check_task

__all__ = ["METRICS", "evaluate_scores", "rank_auc"]


METRICS = ("auc", "acc")


def _as_2d(name: str, array: Any) -> np.ndarray:
    arr = np.asarray(array, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, L) or (N,) array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def prepare_targets_scores(
    targets: Any, scores: Any, task: str, scores_name: str = "scores"
) -> tuple[np.ndarray, np.ndarray]:
    """Bring targets and scores to matching (N, L) arrays of 0/1 targets and per-column scores.

    - multi-label: targets multi-hot (N, L), scores (N, L).
    - binary-class: targets (N, 1) or (N,); scores (N, 1), (N,) or (N, 2) (last column is the positive
      class, as medmnist's getAUC does).
    - multi-class / ordinal: targets one-hot (N, C) or class indices (N, 1) / (N,); scores (N, C). Columns
      become one-vs-rest indicators, as medmnist's getAUC does.
    """
    check_task(task)
    t = _as_2d("targets", targets)
    s = _as_2d(scores_name, scores)
    if t.shape[0] != s.shape[0]:
        raise ValueError(f"targets has {t.shape[0]} rows but {scores_name} has {s.shape[0]}")
    if task == BINARY:
        if s.shape[1] == 2:
            s = s[:, -1:]
        if t.shape[1] != 1 or s.shape[1] != 1:
            raise ValueError(
                f"binary-class needs targets (N, 1) and {scores_name} (N, 1) or (N, 2), "
                f"got {t.shape} and {s.shape}"
            )
    elif task == MULTI_LABEL:
        if t.shape != s.shape:
            raise ValueError(f"targets {t.shape} and {scores_name} {s.shape} must have the same shape")
    else:
        n_classes = s.shape[1]
        if t.shape[1] == 1 and n_classes > 1:
            idx = t[:, 0]
            if np.any(idx != np.round(idx)) or idx.min() < 0 or idx.max() >= n_classes:
                raise ValueError(
                    f"class-index targets must be integers in [0, {n_classes}), "
                    f"got values in [{idx.min()}, {idx.max()}]"
                )
            t = np.eye(n_classes)[idx.astype(int)]
        elif t.shape != s.shape:
            raise ValueError(f"targets {t.shape} must be one-hot with the shape of {scores_name} {s.shape}")
        elif not np.all(t.sum(axis=1) == 1):
            raise ValueError("multi-class targets must be one-hot (exactly one 1 per row)")
    if not np.all((t == 0) | (t == 1)):
        raise ValueError("targets must contain only 0 and 1")
    return t, s


def default_label_names(label_names: Sequence[str] | None, n: int, task: str) -> list[str]:
    if label_names is None:
        return [str(i) for i in range(n)]
    names = [str(x) for x in label_names]
    if task == BINARY and n == 1 and len(names) == 2:
        names = names[1:]  # medmnist names both classes ("normal", "pneumonia"); the column is the positive
    if len(names) != n:
        raise ValueError(f"label_names has {len(names)} names but the targets have {n} columns: {names}")
    return names


def _accuracy(t: np.ndarray, s: np.ndarray, task: str, threshold: float = 0.5) -> float:
    """ACC as medmnist.evaluator.getACC: mean per-column accuracy at ``score > threshold`` for
    multi-label/binary, argmax accuracy for multi-class/ordinal."""
    if task in (MULTI_LABEL, BINARY):
        return float(np.mean((s > threshold) == (t == 1)))
    return float(np.mean(np.argmax(s, axis=1) == np.argmax(t, axis=1)))


def evaluate_scores(
    targets: Any,
    scores: Any,
    task: str = MULTI_LABEL,
    label_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """AUC and ACC of predicted probabilities, as MedMNIST reports them.

    AUC: ``sklearn.metrics.roc_auc_score`` per finding (multi-label), of the positive class (binary), or
    one-vs-rest per class (multi-class/ordinal), averaged over findings/classes: medmnist's ``getAUC``.
    Findings whose evaluated targets hold a single class are skipped, excluded from the mean and named in
    ``"skipped_labels"`` (medmnist would raise). ACC: medmnist's ``getACC`` exactly: for multi-label the
    accuracy at ``score > 0.5`` per finding averaged over *all* findings (defined even for single-class
    findings, so none is skipped), for binary the accuracy at ``score > 0.5``, for multi-class/ordinal
    the argmax accuracy.

    Args:
        targets: (N, L) 0/1 targets (multi-hot; (N, 1) binary; one-hot or (N, 1) indices for multi-class).
        scores: (N, L) probabilities (binary also (N,) or (N, 2)).
        task: medmnist task string.
        label_names: names of the L findings/classes (default "0", "1", ...); for binary-class, medmnist's
            two names (negative, positive) are accepted and the positive one names the column.

    Returns:
        dict with ``auc`` (mean over evaluated findings), ``acc``, ``auc_per_label`` ({name: auc} for
        evaluated findings), ``skipped_labels`` (names), ``n_evaluated_labels``, ``n_samples``.

    Raises:
        ValueError: bad shapes/values, or every finding is single-class (no AUC is defined).
    """
    t, s = prepare_targets_scores(targets, scores, task)
    names = default_label_names(label_names, t.shape[1], task)
    per_label: dict[str, float] = {}
    skipped: list[str] = []
    for j, name in enumerate(names):
        if np.unique(t[:, j]).size < 2:
            skipped.append(name)
            continue
        per_label[name] = float(roc_auc_score(t[:, j], s[:, j]))
    if not per_label:
        raise ValueError(
            f"no finding has both classes among the {t.shape[0]} evaluated targets, so AUC is "
            f"undefined for all of them: {skipped}"
        )
    return {
        "auc": float(np.mean(list(per_label.values()))),
        "acc": _accuracy(t, s, task),
        "auc_per_label": per_label,
        "skipped_labels": skipped,
        "n_evaluated_labels": len(per_label),
        "n_samples": int(t.shape[0]),
    }


def rank_auc(targets: np.ndarray, scores: np.ndarray, axis: int = -2) -> np.ndarray:
    """Vectorised AUC (Mann-Whitney U with mid-ranks for ties), equal to ``roc_auc_score`` per column.

    Args:
        targets: 0/1 array, same shape as ``scores``.
        scores: scores; the sample axis is ``axis``.
        axis: sample axis.

    Returns:
        AUC per remaining index; NaN where a column holds a single class.
    """
    t = np.asarray(targets, dtype=np.float64)
    ranks = rankdata(np.asarray(scores, dtype=np.float64), axis=axis)
    n_pos = t.sum(axis=axis)
    n_neg = t.shape[axis] - n_pos
    u = (ranks * t).sum(axis=axis) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)
