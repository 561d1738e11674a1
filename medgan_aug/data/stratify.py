"""Nested, stratified low-data subsets of a (multi-label) training split.

One seeded *order* of the whole split is built, and the subset for a fraction is a prefix of that
order, so for one seed the 1% subset lies inside the 5% subset, which lies inside the 10% subset.
The order is built the way iterative stratification (Sechidis, Tsoumakas & Vlahavas, "On the
Stratification of Multi-label Data", ECML PKDD 2011) builds folds: the findings are served by need,
rare ones first, so every prefix keeps each finding close to its share of the split.

Why not scikit-multilearn's ``IterativeStratification``: it makes disjoint folds for one fraction, not a
nested family of prefixes, and it is not a dependency of MONAI or medmnist.

Guarantee (tested): with ``L`` the number of strata present in the split (findings with at least one
positive, plus "no finding"), any subset with ``n >= L`` holds at least one positive of every finding
that has one in the split. Beyond that, every prefix keeps each stratum's count within a few images of
``n * k / N`` (``k`` its positives among ``N`` images); the tests measure the worst case.
"""

from __future__ import annotations

import math

import numpy as np

from medgan_aug.utils.validation import check_integer

__all__ = ["strata_matrix", "stratified_order", "low_data_indices"]


def strata_matrix(labels: np.ndarray) -> np.ndarray:
    """Boolean ``(N, S)`` membership matrix of the strata to balance.

    Multi-hot labels ``(N, L>1)`` give the L findings plus a "no finding" column; single-column labels
    ``(N, 1)`` (binary or class index) give one column per class value present.
    """
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or labels.shape[0] == 0:
        raise ValueError(f"labels must be a non-empty (N, L) array, got shape {labels.shape}")
    if labels.shape[1] == 1:
        values = labels[:, 0]
        return values[:, None] == np.unique(values)[None, :]
    positive = labels > 0
    return np.concatenate([positive, ~positive.any(axis=1, keepdims=True)], axis=1)


def stratified_order(labels: np.ndarray, seed: int = 0, window: int = 16) -> np.ndarray:
    """A seeded order of all rows whose every prefix is stratified (see the module docstring).

    Step 1 (coverage): for each stratum, rarest first, take a random row of it unless a row already taken
    covers it. Step 2 (need): repeatedly serve the stratum with the largest deficit
    ``(t + 1) * k_s / N - count_s``, taking, among its next ``window`` random free rows, the one whose strata
    have the largest summed deficit (so co-occurring findings do not overshoot). Integer arithmetic keeps the
    order identical on every machine.
    """
    strata = strata_matrix(labels)
    n_rows, n_strata = strata.shape
    rng = np.random.RandomState(seed)
    queues = [rng.permutation(np.flatnonzero(strata[:, s])) for s in range(n_strata)]
    heads = np.zeros(n_strata, dtype=np.int64)
    totals = strata.sum(axis=0).astype(np.int64)
    taken = np.zeros(n_rows, dtype=bool)
    counts = np.zeros(n_strata, dtype=np.int64)
    order: list[int] = []

    def best_free(s: int, need: np.ndarray) -> int:
        """Among the next ``window`` free rows of stratum ``s``, the one that serves the most need."""
        queue = queues[s]
        while heads[s] < len(queue) and taken[queue[heads[s]]]:
            heads[s] += 1
        free = [int(r) for r in queue[heads[s] : heads[s] + 4 * window] if not taken[r]][:window]
        if not free:
            return -1
        gains = [int(need[strata[r]].sum()) for r in free]
        return free[int(np.argmax(gains))]

    def take(row: int) -> None:
        taken[row] = True
        counts[:] += strata[row]
        order.append(row)

    for s in np.argsort(totals, kind="stable"):
        if totals[s] > 0 and counts[s] == 0:
            take(best_free(int(s), totals - counts * n_rows))
    while len(order) < n_rows:
        need = (len(order) + 1) * totals - counts * n_rows
        for s in np.argsort(-need, kind="stable"):
            row = best_free(int(s), need)
            if row >= 0:
                take(row)
                break
    return np.asarray(order, dtype=np.int64)


def low_data_indices(
    labels: np.ndarray, fraction: float | None = None, n: int | None = None, seed: int = 0
) -> np.ndarray:
    """Sorted row indices of a nested, stratified low-data subset of a split.

    Args:
        labels: the split's labels, ``(N, L)`` multi-hot or ``(N, 1)`` binary/class index.
        fraction: share of the split to keep, in (0, 1]; the subset has ``max(1, round(fraction * N))`` rows.
        n: number of rows to keep instead of ``fraction``.
        seed: subset seed. For one seed and labels, a smaller subset is always inside a larger one.

    Returns:
        Sorted ``int64`` indices into the split.
    """
    n_rows = len(np.asarray(labels))
    if (fraction is None) == (n is None):
        raise ValueError("give exactly one of fraction= or n=")
    if fraction is not None:
        if not isinstance(fraction, (int, float)) or not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
        n = max(1, math.floor(fraction * n_rows + 0.5))
    check_integer("n", n, 1)
    if n > n_rows:
        raise ValueError(f"n={n} is larger than the split ({n_rows} rows)")
    return np.sort(stratified_order(labels, seed)[:n])
