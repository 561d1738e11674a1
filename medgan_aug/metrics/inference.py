"""Small inference helpers for the study's comparisons: bootstrap p-values and percentile intervals, Holm's
step-down adjustment, the paired t-interval over per-seed differences, and one-way random-effects variance
components.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "bootstrap_p_value",
    "percentile_interval",
    "holm_adjust",
    "paired_t_interval",
    "variance_components",
]


def _finite_replicates(replicates: Any) -> np.ndarray:
    values = np.asarray(replicates, dtype=np.float64).ravel()
    return values[np.isfinite(values)]


def bootstrap_p_value(replicates: Any) -> float:
    """Two-sided bootstrap p-value of "the difference is 0": ``2 min(P(d* <= 0), P(d* >= 0))``.

    Each tail probability carries the usual +1 correction, ``(1 + #{d* <= 0}) / (B + 1)`` (as the Monte
    Carlo test p-values of Davison & Hinkley 1997, ch. 4), so the p-value of B replicates is never below
    ``2 / (B + 1)``; capped at 1. Non-finite replicates (invalid resamples) are left out.

    Args:
        replicates: bootstrap replicates of the difference.

    Returns:
        the p-value, NaN when no replicate is finite.
    """
    values = _finite_replicates(replicates)
    if values.size == 0:
        return float("nan")
    below = (1 + np.count_nonzero(values <= 0)) / (values.size + 1)
    above = (1 + np.count_nonzero(values >= 0)) / (values.size + 1)
    return float(min(1.0, 2 * min(below, above)))


def percentile_interval(replicates: Any, confidence: float = 0.95) -> tuple[float, float]:
    """Central percentile interval of bootstrap replicates (Efron & Tibshirani 1993, ch. 13).

    Args:
        replicates: bootstrap replicates; non-finite ones are left out.
        confidence: central coverage in (0, 1).

    Returns:
        (low, high); NaNs when no replicate is finite.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    values = _finite_replicates(replicates)
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979, "A simple sequentially rejective multiple test
    procedure", Scand. J. Statist. 6, 65-70), controlling the family-wise error rate.

    With the m finite p-values sorted, ``p_(1) <= ... <= p_(m)``, the adjusted value of ``p_(i)`` is
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``; rejecting where the adjusted value is below alpha is Holm's
    procedure at level alpha. NaN entries (comparisons without a p-value) stay NaN and do not count in m.

    Args:
        p_values: the family's p-values, in any order.

    Returns:
        adjusted p-values, in the order given.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be a flat sequence, got shape {p.shape}")
    finite = np.flatnonzero(np.isfinite(p))
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError(f"p_values must lie in [0, 1], got {p[finite].tolist()}")
    adjusted = np.full(p.shape, np.nan)
    m = finite.size
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def paired_t_interval(differences: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student t-interval for the mean of paired differences (one per seed): ``mean +- t sd / sqrt(K)``.

    Args:
        differences: per-seed differences (K of them).
        confidence: central coverage in (0, 1).

    Returns:
        (low, high); NaNs with fewer than 2 differences.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    d = np.asarray(differences, dtype=np.float64).ravel()
    if d.size < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    return float(d.mean() - half), float(d.mean() + half)


def variance_components(groups: Sequence[Sequence[float]]) -> dict[str, float]:
    """Between- and within-group variance of a one-way random-effects model, by the ANOVA (method of moments)
    estimators (Searle, Casella & McCulloch 1992, "Variance Components", ch. 3, the one-way classification).

    Model: ``y_kc = mu + a_k + e_kc`` with ``Var(a) = between`` and ``Var(e) = within``. With K groups of
    sizes n_k (N values), ``within = MSW`` and ``between = (MSB - MSW) / n0``, where
    ``n0 = (N - sum n_k^2 / N) / (K - 1)`` (n0 is the common size when the groups are balanced). The ANOVA
    estimate of ``between`` can be negative; it is reported as ``between_raw`` and truncated at 0 in
    ``between``.

    Args:
        groups: K >= 2 groups of values (e.g. one study seed's AUCs over its classifier seeds); at least one
            group must hold two values or more.

    Returns:
        dict with ``between``, ``between_raw``, ``within``, ``share_between`` (between / (between + within)),
        ``ms_between``, ``ms_within``, ``n0``, ``n_groups``, ``n_values``.
    """
    arrays = [np.asarray(g, dtype=np.float64).ravel() for g in groups]
    if len(arrays) < 2 or any(a.size == 0 for a in arrays):
        raise ValueError(
            f"groups must hold at least 2 non-empty groups, got sizes {[a.size for a in arrays]}"
        )
    sizes = np.array([a.size for a in arrays], dtype=np.float64)
    n, k = sizes.sum(), len(arrays)
    if n <= k:
        raise ValueError("groups need a group with two values or more to separate within-group variance")
    grand = np.concatenate(arrays).mean()
    means = np.array([a.mean() for a in arrays])
    ms_between = float((sizes * (means - grand) ** 2).sum() / (k - 1))
    ms_within = float(sum(((a - a.mean()) ** 2).sum() for a in arrays) / (n - k))
    n0 = float((n - (sizes**2).sum() / n) / (k - 1))
    between_raw = (ms_between - ms_within) / n0
    between = max(0.0, between_raw)
    total = between + ms_within
    return {
        "between": between,
        "between_raw": between_raw,
        "within": ms_within,
        "share_between": between / total if total > 0 else float("nan"),
        "ms_between": ms_between,
        "ms_within": ms_within,
        "n0": n0,
        "n_groups": k,
        "n_values": int(n),
    }
