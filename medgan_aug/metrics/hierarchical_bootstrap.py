"""Two-level (seeds, then test images) paired bootstrap of a metric difference between two study arms.

A study seed fixes a training subset, a GAN and a classifier; per seed the difference between two arms
varies a lot, so an interval that resamples only test images (:func:`pooled_paired_bootstrap_delta`)
describes the test set, not the next seed. The bootstrap here resamples both levels: study seeds with
replacement, then test images, both arms always scored on the same resampled images (paired). It is the
multi-stage (hierarchical) resampling of Davison & Hinkley ("Bootstrap Methods and their Application",
1997, §3.8, hierarchical data) and the two-stage cluster bootstrap studied by Field & Welsh ("Bootstrapping
clustered data", J. R. Statist. Soc. B 69, 369-390, 2007), with the study seed as the cluster.

Test images here are *crossed* with seeds, not nested in them: every seed is scored on the same test
images. By default (``images="shared"``) each replicate therefore draws one image resample shared by all
the seeds it drew, which is the pigeonhole bootstrap of crossed designs (Owen, "The pigeonhole bootstrap",
Ann. Appl. Stat. 1, 2007): under a crossed random-effects model its variance is mildly conservative,
whereas drawing images independently for every drawn seed (``images="per_seed"``, the nested two-stage
scheme) divides the variance that the shared test images contribute by the number of seeds. No bootstrap is
exact for crossed designs (McCullagh, Bernoulli 6, 2000).

Test images can themselves be clustered: NIH1000's 233 test images come from 53 patients, one of them with 66
images, and images of one patient are not independent. With ``clusters`` (one patient id per test image) the
image level resamples patients with replacement and every image of a drawn patient enters with the patient's
count (the cluster bootstrap of Field & Welsh 2007, Davison & Hinkley 1997 §3.8); without it, images. When
every patient has exactly one image the two are the same draws, number for number.

Resamples are represented by count weights (how often each test image was drawn), and AUC on a resample is
the Mann-Whitney statistic with those weights, computed from one sort of the full test set per finding: no
sort per replicate, so 2,000 replicates of 5 seeds x 500 images x 14 findings take about a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medgan_aug.metrics.classification import METRICS, default_label_names, prepare_targets_scores
from medgan_aug.metrics.inference import bootstrap_p_value, percentile_interval
from medgan_aug.utils.tasks import BINARY, MULTI_LABEL
from medgan_aug.utils.validation import check_integer

__all__ = ["IMAGE_SCHEMES", "cluster_codes", "resampled_auc", "hierarchical_paired_bootstrap_delta"]

#: How test images are resampled within a replicate: one resample shared by the replicate's seeds (crossed
#: design, default) or an independent one per drawn seed (nested design).
IMAGE_SCHEMES = ("shared", "per_seed")

# Elements of one (replicates x images) block evaluated at once: bounds the memory of a chunk.
_BLOCK_ELEMENTS = 2_000_000


class _WeightedRun:
    """One classifier's test scores, sorted once per finding for AUC and accuracy under count weights."""

    def __init__(self, targets: np.ndarray, scores: np.ndarray, task: str) -> None:
        self.findings = []
        for j in range(targets.shape[1]):
            order = np.argsort(scores[:, j], kind="stable")
            sorted_scores = scores[order, j]
            positive = targets[order, j] == 1
            if positive.all() or not positive.any():
                self.findings.append(None)  # single class on the full set: never valid in a resample
                continue
            start = np.searchsorted(sorted_scores, sorted_scores, side="left")  # first of the tie group
            stop = np.searchsorted(sorted_scores, sorted_scores, side="right")  # one past its last
            negatives_before = np.concatenate([[0], np.cumsum(~positive)])
            pos = np.flatnonzero(positive)
            self.findings.append(
                (order[pos], order[~positive], negatives_before[start[pos]], negatives_before[stop[pos]])
            )
        if task in (MULTI_LABEL, BINARY):
            self.correct = ((scores > 0.5) == (targets == 1)).mean(axis=1)
        else:
            self.correct = (np.argmax(scores, axis=1) == np.argmax(targets, axis=1)).astype(np.float64)

    def auc_u(self, weights: np.ndarray) -> np.ndarray:
        """Weighted Mann-Whitney U per finding, (M, L): sum over (positive, negative) pairs of
        ``w_pos w_neg [s_pos > s_neg]``, ties counting one half. NaN for findings single-class overall."""
        u = np.full((weights.shape[0], len(self.findings)), np.nan)
        for j, finding in enumerate(self.findings):
            if finding is None:
                continue
            pos_rows, neg_rows, below, through = finding
            cum = np.zeros((weights.shape[0], neg_rows.size + 1))
            np.cumsum(weights[:, neg_rows], axis=1, out=cum[:, 1:])
            # negatives strictly below a positive, plus half of the negatives tied with it
            u[:, j] = (weights[:, pos_rows] * (cum[:, below] + cum[:, through])).sum(axis=1) / 2
        return u


def resampled_auc(targets: Any, scores: Any, weights: Any, *, task: str = MULTI_LABEL) -> np.ndarray:
    """AUC per finding on resamples of a test set given as count weights.

    With ``weights[m, i]`` the number of times test image i was drawn in resample m, the result equals the
    AUC (mid-ranks for ties, as ``roc_auc_score``) of the resample built by repeating the rows, without
    building it: the weighted Mann-Whitney U over one sort of the full set.

    Args:
        targets: (N, L) 0/1 targets (task conventions of :func:`evaluate_scores`).
        scores: (N, L) scores.
        weights: (M, N) non-negative weights, or (N,) for one resample.
        task: medmnist task string.

    Returns:
        (M, L) AUCs (or (L,) for 1-d weights); NaN where a finding holds a single class in the resample.
    """
    t, s = prepare_targets_scores(targets, scores, task)
    w = np.asarray(weights, dtype=np.float64)
    flat = w.ndim == 1
    w = np.atleast_2d(w)
    if w.ndim != 2 or w.shape[1] != t.shape[0] or np.any(w < 0):
        raise ValueError(
            f"weights must be non-negative with shape (M, {t.shape[0]}), got {np.shape(weights)}"
        )
    positive_weight = w @ t
    negative_weight = w.sum(axis=1, keepdims=True) - positive_weight
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = _WeightedRun(t, s, task).auc_u(w) / (positive_weight * negative_weight)
    auc[(positive_weight == 0) | (negative_weight == 0)] = np.nan
    return auc[0] if flat else auc


def _as_runs(entry: Any, k: int, name: str) -> list[Any]:
    """The classifier-seed score arrays of study seed k: a list/tuple of arrays, a (C, N, L) array, or one
    (N, L) / (N,) array (one classifier seed)."""
    if isinstance(entry, (list, tuple)) and entry and all(isinstance(x, np.ndarray) for x in entry):
        return list(entry)
    array = np.asarray(entry)
    if array.ndim == 3:
        return list(array)
    if array.ndim in (1, 2) and array.size:
        return [array]
    raise ValueError(
        f"{name}[{k}] must be a score array, a (C, N, L) array or a list of score arrays (one per "
        f"classifier seed), got shape {array.shape}"
    )


def _resample_counts(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """(rows, n) counts of n draws with replacement from n units, one row per resample."""
    draws = rng.integers(0, n, size=(rows, n)) + n * np.arange(rows)[:, None]
    return np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float64)


def cluster_codes(clusters: Any, n: int) -> np.ndarray:
    """Integer codes 0..C-1 of per-image cluster ids, numbered in order of first appearance.

    Numbering by first appearance (not by sorted id) makes the codes ``0, 1, ..., n-1`` when every image is its
    own cluster, so the cluster bootstrap then draws exactly what the image bootstrap draws.

    Args:
        clusters: (n,) cluster id per image (patient ids: strings or integers).
        n: the number of test images.

    Raises:
        ValueError: ``clusters`` is not a flat sequence of n ids, or holds a missing id (None, NaN, "").
    """
    ids = np.asarray(clusters, dtype=object).ravel()
    if np.ndim(clusters) != 1 or ids.size != n:
        raise ValueError(f"clusters must hold one id per test image ({n}), got shape {np.shape(clusters)}")
    missing = [i for i, v in enumerate(ids) if v is None or v == "" or (isinstance(v, float) and np.isnan(v))]
    if missing:
        raise ValueError(f"clusters has no id for test image(s) {missing[:5]}: give every image a patient id")
    codes: dict[Any, int] = {}
    return np.array([codes.setdefault(v, len(codes)) for v in ids.tolist()], dtype=np.int64)


def _image_weights(rng: np.random.Generator, rows: int, codes: np.ndarray) -> np.ndarray:
    """(rows, n) count weights of images: clusters drawn with replacement, each image weighted by its
    cluster's count (images when every cluster holds one image)."""
    n_clusters = int(codes.max()) + 1
    return _resample_counts(rng, rows, n_clusters)[:, codes]


def _check_arguments(
    metric: str, n_boot: Any, confidence: float, images: str, scores_a: Sequence[Any], scores_b: Sequence[Any]
) -> None:
    """The settings of :func:`hierarchical_paired_bootstrap_delta`, each with a one-line ValueError."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    check_integer("n_boot", n_boot, 1)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if images not in IMAGE_SCHEMES:
        raise ValueError(f"images must be one of {IMAGE_SCHEMES}, got {images!r}")
    if len(scores_a) != len(scores_b) or len(scores_a) == 0:
        raise ValueError(
            f"scores_a and scores_b must be non-empty sequences of equal length (one entry per study "
            f"seed), got {len(scores_a)} and {len(scores_b)}"
        )


def _weighted_arms(
    targets: Any, scores_a: Sequence[Any], scores_b: Sequence[Any], task: str
) -> tuple[list[list[list[_WeightedRun]]], np.ndarray]:
    """Both arms' score arrays, checked and sorted once: ``arms[arm][study seed][classifier seed]``, and the
    prepared (N, L) targets."""
    arms: list[list[list[_WeightedRun]]] = [[], []]
    t = None
    for arm_index, (name, arm) in enumerate((("scores_a", scores_a), ("scores_b", scores_b))):
        for k, entry in enumerate(arm):
            runs = []
            for c, scores in enumerate(_as_runs(entry, k, name)):
                t, s = prepare_targets_scores(targets, scores, task, f"{name}[{k}][{c}]")
                runs.append(_WeightedRun(t, s, task))
            arms[arm_index].append(runs)
    assert t is not None
    return arms, t


class _PairedDelta:
    """The per-draw statistic: study seed k's difference d_k between the arms on count-weighted resamples."""

    def __init__(self, arms: list[list[list[_WeightedRun]]], targets: np.ndarray, metric: str) -> None:
        self.arms, self.targets, self.metric = arms, targets, metric
        self.n_seeds = len(arms[0])
        self.full_valid = (targets.min(axis=0) == 0) & (targets.max(axis=0) == 1)
        if metric == "auc" and not self.full_valid.any():
            raise ValueError("no finding has both classes in the test targets: AUC is undefined")

    def arm_metric(
        self, runs: list[_WeightedRun], w: np.ndarray, pairs: np.ndarray, valid: np.ndarray
    ) -> np.ndarray:
        """(M,) metric of one seed's arm, mean over its classifier seeds, on M resamples."""
        if self.metric == "acc":
            values = [w @ run.correct / w.sum(axis=1) for run in runs]
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                values = [
                    np.where(valid, run.auc_u(w) / pairs, 0.0).sum(axis=1) / valid.sum(axis=1) for run in runs
                ]
        return np.mean(values, axis=0)

    def seed_delta(self, k: int, w: np.ndarray) -> np.ndarray:
        """(M,) difference d_k on M resamples (NaN where no finding is valid)."""
        positive_weight = w @ self.targets
        negative_weight = w.sum(axis=1, keepdims=True) - positive_weight
        valid = (positive_weight > 0) & (negative_weight > 0)
        pairs = positive_weight * negative_weight
        metric_b = self.arm_metric(self.arms[1][k], w, pairs, valid)
        return metric_b - self.arm_metric(self.arms[0][k], w, pairs, valid)

    def full_set(self) -> tuple[np.ndarray, list[list[float]]]:
        """On the full test set: d_k per seed, and each arm's metric per seed (``[arm][seed]``)."""
        t, n = self.targets, self.targets.shape[0]
        ones = np.ones((1, n))
        per_seed = np.array([self.seed_delta(k, ones)[0] for k in range(self.n_seeds)])
        full = [
            [
                self.arm_metric(self.arms[a][k], ones, ones @ t * (n - ones @ t), self.full_valid[None])[0]
                for k in range(self.n_seeds)
            ]
            for a in (0, 1)
        ]
        return per_seed, full


def _shared_replicates(statistic: _PairedDelta, drawn: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(m,) replicates: every drawn seed on its replicate's one image resample, weighted by its draws."""
    m, n_seeds = drawn.shape
    counts = np.stack([(drawn == k).sum(axis=1) for k in range(n_seeds)], axis=1)
    total = np.zeros(m)
    for k in range(n_seeds):
        rows = np.flatnonzero(counts[:, k])
        if rows.size:
            total[rows] += counts[rows, k] * statistic.seed_delta(k, weights[rows])
    return total / n_seeds


def _per_seed_replicates(statistic: _PairedDelta, drawn: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(m,) replicates: slot (r, j) is drawn seed ``drawn[r, j]`` on its own image resample (row r*K + j)."""
    m, n_seeds = drawn.shape
    values = np.empty(m * n_seeds)
    flat = drawn.ravel()
    for k in range(n_seeds):
        rows = np.flatnonzero(flat == k)
        if rows.size:
            values[rows] = statistic.seed_delta(k, weights[rows])
    return values.reshape(m, n_seeds).mean(axis=1)


def _replicates(
    statistic: _PairedDelta, codes: np.ndarray, *, n_boot: int, seed: int, resample_seeds: bool, images: str
) -> np.ndarray:
    """(n_boot,) bootstrap replicates, drawn in chunks of bounded memory: per replicate the study seeds (with
    replacement, or each once), then the image (or cluster) count weights, from one generator seeded
    ``seed``."""
    n_seeds, n = statistic.n_seeds, codes.size
    rng = np.random.default_rng(seed)
    slots_per_replicate = n_seeds if images == "per_seed" else 1
    chunk = max(1, _BLOCK_ELEMENTS // (n * slots_per_replicate))
    replicates = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        if resample_seeds:
            drawn = rng.integers(0, n_seeds, size=(m, n_seeds))
        else:
            drawn = np.broadcast_to(np.arange(n_seeds), (m, n_seeds))
        weights = _image_weights(rng, m * slots_per_replicate, codes)
        resampled = _per_seed_replicates if images == "per_seed" else _shared_replicates
        replicates[start : start + m] = resampled(statistic, drawn, weights)
    return replicates


def _summary(
    statistic: _PairedDelta,
    replicates: np.ndarray,
    *,
    confidence: float,
    resample_seeds: bool,
    images: str,
    codes: np.ndarray,
    clustered: bool,
    names: list[str],
) -> dict[str, Any]:
    """The estimate, its percentile interval and p-value, and what was resampled (the keys documented by
    :func:`hierarchical_paired_bootstrap_delta`)."""
    per_seed, full = statistic.full_set()
    low, high = percentile_interval(replicates, confidence)
    return {
        "delta": float(per_seed.mean()),
        "ci_low": low,
        "ci_high": high,
        "p_value": bootstrap_p_value(replicates),
        "per_seed_delta": per_seed.tolist(),
        "replicates": replicates,
        "n_valid_boot": int(np.isfinite(replicates).sum()),
        "n_boot": int(replicates.size),
        "n_seeds": statistic.n_seeds,
        "n_classifier_seeds_a": [len(runs) for runs in statistic.arms[0]],
        "n_classifier_seeds_b": [len(runs) for runs in statistic.arms[1]],
        "mean_a": float(np.mean(full[0])),
        "mean_b": float(np.mean(full[1])),
        "metric": statistic.metric,
        "confidence": float(confidence),
        "resample_seeds": bool(resample_seeds),
        "images": images,
        "resampled_unit": "patients" if clustered else "images",
        "n_clusters": int(codes.max()) + 1,
        "skipped_labels": [names[j] for j in np.flatnonzero(~statistic.full_valid)]
        if statistic.metric == "auc"
        else [],
    }


def hierarchical_paired_bootstrap_delta(
    targets: Any,
    scores_a: Sequence[Any],
    scores_b: Sequence[Any],
    *,
    metric: str = "auc",
    n_boot: int = 2000,
    seed: int = 0,
    task: str = MULTI_LABEL,
    confidence: float = 0.95,
    label_names: Sequence[str] | None = None,
    resample_seeds: bool = True,
    images: str = "shared",
    clusters: Any = None,
) -> dict[str, Any]:
    """Two-level paired bootstrap of ``metric(b) - metric(a)``: study seeds, then test images.

    Study seed k contributes ``d_k = mean_c metric(b_kc) - mean_c metric(a_kc)``, its classifier seeds c
    averaged within each arm; the estimate is the mean of d_k over the K seeds. Each replicate draws K
    seeds with replacement and test images with replacement (one resample for all drawn seeds, or one per
    drawn seed: ``images``), scores both arms of every drawn seed on the same resampled images, and averages
    the drawn seeds' differences. For AUC, findings with a single class in a resample are left out of that
    resample's mean for both arms alike; a replicate in which a drawn resample has no two-class finding is
    dropped (``n_valid_boot`` counts the rest). With ``resample_seeds=False`` every replicate keeps each seed
    once: the images-only interval, equal in distribution to :func:`pooled_paired_bootstrap_delta` with
    classifier seeds averaged. See the module docstring for the method and its references.

    The random draws depend only on ``seed``, ``n_boot``, K and N: comparisons run with the same seed on the
    same seeds and test images share their resamples (common random numbers), so their replicates can be
    averaged replicate by replicate (e.g. over training fractions).

    Args:
        targets: (N, L) test targets, shared by every score array.
        scores_a: baseline arm, one entry per study seed: an (N, L) array, a sequence of them (one per
            classifier seed) or a (C, N, L) array.
        scores_b: compared arm, the same study seeds in the same order (its classifier seeds may differ).
        metric: "auc" or "acc".
        n_boot: bootstrap replicates.
        seed: seed of the resampling.
        task: medmnist task string.
        confidence: central coverage of the percentile interval.
        label_names: names of the L findings, for ``skipped_labels``.
        resample_seeds: draw study seeds with replacement (False: images only).
        images: "shared" (one image resample per replicate) or "per_seed" (one per drawn seed).
        clusters: (N,) cluster (patient) id of every test image: the image level resamples clusters, and
            every image enters with its cluster's count. None: images are resampled one by one.

    Returns:
        dict with ``delta``, ``ci_low``, ``ci_high``, ``p_value`` (two-sided, :func:`bootstrap_p_value`),
        ``per_seed_delta`` (d_k on the full test set, in the order given), ``replicates`` ((n_boot,) array,
        NaN where dropped), ``n_valid_boot``, ``n_boot``, ``n_seeds``, ``n_classifier_seeds_a``/``_b``,
        ``mean_a``, ``mean_b``, ``metric``, ``confidence``, ``resample_seeds``, ``images``,
        ``resampled_unit`` ("patients" with ``clusters``, else "images"), ``n_clusters``, ``skipped_labels``.
    """
    _check_arguments(metric, n_boot, confidence, images, scores_a, scores_b)
    arms, t = _weighted_arms(targets, scores_a, scores_b, task)
    n, n_labels = t.shape
    codes = np.arange(n) if clusters is None else cluster_codes(clusters, n)
    names = default_label_names(label_names, n_labels, task)
    statistic = _PairedDelta(arms, t, metric)
    replicates = _replicates(
        statistic, codes, n_boot=n_boot, seed=seed, resample_seeds=resample_seeds, images=images
    )
    return _summary(
        statistic,
        replicates,
        confidence=confidence,
        resample_seeds=resample_seeds,
        images=images,
        codes=codes,
        clustered=clusters is not None,
        names=names,
    )
