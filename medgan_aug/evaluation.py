"""Generator evaluation on in-domain features: Fréchet and kernel distances, precision/recall, coverage.

**These are not Inception FIDs.** Every distance here is computed on the penultimate embedding of an
*in-domain* feature extractor: the project's own small CNN (:func:`medgan_aug.classify.build_classifier`)
trained to classify findings on the real training split of the same data (:func:`fit_feature_extractor`),
saved with :func:`medgan_aug.classify.save_classifier` and reused (:func:`load_or_fit_extractor`) so
numbers are comparable between runs that use the same extractor file. Values are not comparable with
published FIDs (ImageNet Inception-v3 features, 299 px RGB), nor between different extractor files.
An Inception FID can be computed from :func:`inception_features` when the optional
``torch-fidelity`` package and a user-supplied local Inception weights file are present; nothing is
downloaded.

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

import hashlib
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.classify import (
    CLASSIFIER_NAMES,
    build_classifier,
    extract_features,
    load_classifier,
    save_classifier,
    scores_from_logits,
    train_classifier,
)
from medgan_aug.metrics import evaluate_scores

__all__ = [
    "EXTRACTOR_FORMAT_NOTE",
    "conditional_fidelity",
    "data_fingerprint",
    "default_extractor_name",
    "density_coverage",
    "distribution_metrics",
    "extractor_features",
    "fit_feature_extractor",
    "frechet_distance",
    "inception_features",
    "kernel_distance",
    "load_or_fit_extractor",
    "precision_recall",
    "weights_fingerprint",
]

#: One sentence every report prints beside the Fréchet numbers.
EXTRACTOR_FORMAT_NOTE = (
    "Distances are computed on the penultimate features of an in-domain CNN trained on the real training "
    "split (not ImageNet Inception-v3): they are not Inception FIDs and are comparable only between runs "
    "evaluated with the same extractor file."
)


# ----------------------------------------------------------------------------------- input checking
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


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------------ distances
def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al., NeurIPS 2017).

    ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})``, computed in float64 with MONAI's
    ``monai.metrics.fid.compute_frechet_distance``; if the matrix square root is numerically unusable
    (near-singular covariances) it is retried with 1e-6 added to both diagonals. Tiny negative results
    from rounding are returned as 0.

    Args:
        features_a: (N, D) features.
        features_b: (M, D) features.

    Returns:
        The distance (>= 0), in squared feature units.
    """
    from monai.metrics.fid import compute_frechet_distance
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
            value = float(compute_frechet_distance(mu_a, cov_a, mu_b, cov_b))
        except ValueError:  # imaginary component too large: regularise as pytorch-fid does
            eye = torch.eye(cov_a.shape[0], dtype=cov_a.dtype) * 1e-6
            value = float(compute_frechet_distance(mu_a, cov_a + eye, mu_b, cov_b + eye))
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
    subset_size = _positive_int("subset_size", subset_size, 2)
    num_subsets = _positive_int("num_subsets", num_subsets)
    degree = _positive_int("degree", degree)
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


# ------------------------------------------------------------------------- manifold metrics (k-NN)
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

    Returns:
        ``{"precision": p, "recall": r}`` in [0, 1].
    """
    real = _as_features("real_features", real_features, k + 1)
    fake = _as_features("fake_features", fake_features, k + 1)
    _same_width(real, fake, ("real_features", "fake_features"))
    k = _positive_int("k", k)
    real_r, fake_r = _knn_radii(real, k), _knn_radii(fake, k)
    d = _pairwise(fake, real)  # (n_fake, n_real)
    precision = (d <= real_r[None, :]).any(dim=1).double().mean()
    recall = (d.T <= fake_r[None, :]).any(dim=1).double().mean()
    return {"precision": float(precision), "recall": float(recall)}


def density_coverage(real_features: Any, fake_features: Any, k: int = 5) -> dict[str, float]:
    """Density and coverage (Naeem et al., ICML 2020), with real k-NN balls only.

    Density: ``1/(k M) sum_j sum_i 1[fake_j in B(real_i, NND_k(real_i))]`` (about 1 for a perfect
    generator, can exceed 1). Coverage: the share of real samples whose ball holds at least one
    generated sample. ``k=5`` is the paper's default.

    Returns:
        ``{"density": d, "coverage": c}``.
    """
    real = _as_features("real_features", real_features, k + 1)
    fake = _as_features("fake_features", fake_features)
    _same_width(real, fake, ("real_features", "fake_features"))
    k = _positive_int("k", k)
    radii = _knn_radii(real, k)
    inside = _pairwise(fake, real) <= radii[None, :]  # (n_fake, n_real)
    density = inside.double().sum() / (k * fake.shape[0])
    coverage = inside.any(dim=0).double().mean()
    return {"density": float(density), "coverage": float(coverage)}


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
    repeats = _positive_int("repeats", repeats)
    n = min(real.shape[0] // 2, fake.shape[0])
    if ref is not None:
        n = min(n, ref.shape[0])
    if max_samples is not None:
        n = min(n, _positive_int("max_samples", max_samples, 2))
    if n <= max(pr_k, dc_k):
        raise ValueError(
            f"too few samples for the k-NN metrics: n={n} compared rows (real {real.shape[0]} split in "
            f"halves, fake {fake.shape[0]}) but k={max(pr_k, dc_k)}; give more images"
        )
    rng = np.random.default_rng(seed)
    names = ("frechet_distance", "kid", "precision", "recall", "density", "coverage")
    kinds = ("value", "floor") + (("heldout",) if ref is not None else ())
    collected: dict[str, dict[str, list[float]]] = {m: {k: [] for k in kinds} for m in names}

    def measure(a: torch.Tensor, other: torch.Tensor, kind: str, rep_seed: int) -> None:
        collected["frechet_distance"][kind].append(frechet_distance(other, a))
        kid, _ = kernel_distance(other, a, num_subsets=kid_subsets, seed=rep_seed)
        collected["kid"][kind].append(kid)
        for key, val in precision_recall(a, other, k=pr_k).items():
            collected[key][kind].append(val)
        for key, val in density_coverage(a, other, k=dc_k).items():
            collected[key][kind].append(val)

    for _ in range(repeats):
        perm = torch.from_numpy(rng.permutation(real.shape[0]))
        half_a, half_b = real[perm[:n]], real[perm[n : 2 * n]]
        fake_n = fake[torch.from_numpy(rng.choice(fake.shape[0], n, replace=False))]
        rep_seed = int(rng.integers(2**31))
        measure(half_a, fake_n, "value", rep_seed)
        measure(half_a, half_b, "floor", rep_seed)
        if ref is not None:
            ref_n = ref[torch.from_numpy(rng.choice(ref.shape[0], n, replace=False))]
            measure(half_a, ref_n, "heldout", rep_seed)

    out: dict[str, Any] = {"n": int(n), "repeats": repeats}
    for metric, per_kind in collected.items():
        out[metric] = {}
        for kind, vals in per_kind.items():
            out[metric][kind] = float(np.mean(vals))
            out[metric][f"{kind}_std"] = float(np.std(vals))
    return out


# ------------------------------------------------------------------------------ feature extractor
def data_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of a split's images and labels (identifies the data an extractor was trained on)."""
    digest = hashlib.sha256()
    for arr in (np.ascontiguousarray(images), np.ascontiguousarray(labels)):
        digest.update(str((arr.dtype.str, arr.shape)).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 of a model's state (names, dtypes, shapes, values): the extractor's identity in reports.

    Unlike the file's own hash it does not depend on how the file was written (torch's zip records the
    temporary file name of an atomic save).
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return digest.hexdigest()


def default_extractor_name(
    dataset: Any, arch: str = "small_cnn", iterations: int = 1000, seed: int = 0
) -> str:
    """File name that identifies an extractor: flag, size, arch, iterations, seed and data fingerprint."""
    fp = data_fingerprint(dataset.images, dataset.labels)[:12]
    return f"extractor_{dataset.flag}_{dataset.size}px_{arch}_{iterations}it_seed{seed}_{fp}.pt"


def _check_dataset(dataset: Any) -> None:
    missing = [
        a
        for a in ("images", "labels", "task", "num_labels", "num_channels", "size", "flag")
        if not hasattr(dataset, a)
    ]
    if missing:
        raise TypeError(
            f"dataset must be a MedMNISTDataset (real training split); {type(dataset).__name__} lacks "
            f"{missing}"
        )
    if len(dataset) < 2:
        raise ValueError(f"dataset has {len(dataset)} images; the feature extractor needs a training split")


def fit_feature_extractor(
    dataset: Any,
    path: str | os.PathLike | None = None,
    *,
    arch: str = "small_cnn",
    iterations: int = 1000,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the in-domain feature extractor on the real training split and (optionally) save it.

    The extractor is the project's downstream classifier (:func:`medgan_aug.classify.build_classifier`)
    trained to predict the findings with :func:`medgan_aug.classify.train_classifier`; its penultimate
    embedding (``features``) is the feature space of every distance in this module. The saved file's
    meta records what makes numbers comparable: flag, image size, arch, iterations, seed, and the
    SHA-256 of the training data.

    Args:
        dataset: the real training split (:class:`medgan_aug.data.MedMNISTDataset`, ``split="train"``).
        path: where to save it (:func:`medgan_aug.classify.save_classifier`, atomic); None: do not save.
        arch: ``"small_cnn"`` (default) or ``"resnet18"``.
        iterations, batch_size, lr, seed: training settings (deterministic for a seed on CPU).
        device: torch device. progress: show a progress bar.

    Returns:
        ``(model in eval mode, meta)``.
    """
    _check_dataset(dataset)
    if arch not in CLASSIFIER_NAMES:
        raise ValueError(f"arch must be one of {CLASSIFIER_NAMES}, got {arch!r}")
    iterations = _positive_int("iterations", iterations)
    model = build_classifier(arch, dataset.num_channels, dataset.num_labels, dataset.size, seed=seed)
    stats = train_classifier(
        model,
        dataset,
        task=dataset.task,
        iterations=iterations,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        progress=progress,
    )
    meta = {
        "purpose": "medgan_aug feature extractor",
        "flag": str(dataset.flag),
        "task": str(dataset.task),
        "label_names": [str(n) for n in dataset.label_names],
        "image_size": int(dataset.size),
        "arch": arch,
        "train_iterations": iterations,
        "batch_size": int(batch_size),
        "lr": float(lr),
        "seed": int(seed),
        "train_size": int(len(dataset)),
        "data_sha256": data_fingerprint(dataset.images, dataset.labels),
        "source": os.fspath(getattr(dataset, "source", "")),
        "final_loss": float(np.mean(stats["losses"][-20:])),
    }
    if path is not None:
        save_classifier(model, path, meta)
    return model.eval(), meta


def load_or_fit_extractor(
    path: str | os.PathLike,
    dataset: Any,
    **fit_kwargs: Any,
) -> tuple[nn.Module, dict[str, Any], bool]:
    """Load the extractor saved at ``path``, or fit it on ``dataset`` and save it there.

    A loaded extractor must fit the data (channels, label width, image size), else ValueError. If it
    was trained on different data than ``dataset`` (SHA-256 in its meta), a warning says so: the numbers
    then stay comparable with other runs evaluated by the same file, but not with runs evaluated by an
    extractor of ``dataset``.

    Args:
        path: extractor file (read if it exists, written otherwise).
        dataset: the real training split.
        **fit_kwargs: passed to :func:`fit_feature_extractor` when fitting (ignored when the file exists:
            the file is the extractor's identity; its meta records how it was trained).

    Returns:
        ``(model, meta, fitted_now)``.
    """
    _check_dataset(dataset)
    path = Path(path)
    if not path.exists():
        model, meta = fit_feature_extractor(dataset, path, **fit_kwargs)
        return model, meta, True
    model, meta = load_classifier(path)
    arch = getattr(model, "arch", {})
    wanted = {
        "in_channels": dataset.num_channels,
        "num_outputs": dataset.num_labels,
        "image_size": dataset.size,
    }
    wrong = {k: (arch.get(k), v) for k, v in wanted.items() if arch.get(k) != v}
    if wrong:
        details = ", ".join(f"{k}: file {a} vs data {b}" for k, (a, b) in wrong.items())
        raise ValueError(f"extractor {path} does not fit the data ({details}); use another --extractor")
    if not hasattr(model, "features"):
        raise ValueError(f"extractor {path}: model has no features() embedding")
    fp = data_fingerprint(dataset.images, dataset.labels)
    if meta.get("data_sha256") not in (None, fp):
        warnings.warn(
            f"extractor {path} was trained on other data (sha256 {str(meta.get('data_sha256'))[:12]}...) "
            f"than {getattr(dataset, 'source', 'this dataset')} ({fp[:12]}...)",
            stacklevel=2,
        )
    return model, meta, False


def extractor_features(
    model: nn.Module, images: torch.Tensor, batch_size: int = 256, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Extractor embeddings (N, D) float64 of images (N, C, H, W) in [0, 1] (checked)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(
            f"images must be an (N, C, H, W) tensor, got {getattr(images, 'shape', type(images))}"
        )
    if images.numel() and (float(images.min()) < -1e-6 or float(images.max()) > 1 + 1e-6):
        raise ValueError(
            f"images must be in [0, 1] (got [{float(images.min()):.3g}, {float(images.max()):.3g}]); "
            "convert generator output with networks.to_unit_range"
        )
    return extract_features(model, images.float(), batch_size=batch_size, device=device).astype(np.float64)


# ------------------------------------------------------------------------------ conditional fidelity
@torch.no_grad()
def conditional_fidelity(
    model: nn.Module,
    images: torch.Tensor,
    labels: Any,
    *,
    task: str = "multi-label, binary-class",
    label_names: Sequence[str] | None = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    """The extractor-classifier's AUC on generated images against the labels they were generated with.

    Does a "cardiomegaly" sample look like cardiomegaly to a classifier trained on real images? Compare
    with the same classifier's AUC on held-out real images (its ceiling here): near that value means
    the conditioning is visible; near 0.5 means the generator ignores it. Findings without both classes
    among ``labels`` are skipped (see :func:`medgan_aug.metrics.evaluate_scores`).

    Args:
        model: the extractor (a trained classifier).
        images: (N, C, H, W) generated images in [0, 1].
        labels: (N, L) conditioning label vectors.
        task: medmnist task string.
        label_names: names of the L findings.

    Returns:
        :func:`medgan_aug.metrics.evaluate_scores` output (``auc``, ``acc``, ``auc_per_label``, ...).
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(
            f"images must be an (N, C, H, W) tensor, got {getattr(images, 'shape', type(images))}"
        )
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim != 2 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels must be ({images.shape[0]}, L) to match the images, got {labels.shape}")
    was_training = model.training
    model.eval()
    scores = []
    for i in range(0, images.shape[0], batch_size):
        logits = model(images[i : i + batch_size].float())
        scores.append(scores_from_logits(logits, task).double().numpy())
    model.train(was_training)
    return evaluate_scores(labels, np.concatenate(scores), task=task, label_names=label_names)


# ------------------------------------------------------------------------- optional Inception FID
def inception_features(
    images: torch.Tensor,
    weights_path: str | os.PathLike,
    batch_size: int = 64,
) -> np.ndarray:
    """Optional: 2048-d Inception-v3 pool features (torch-fidelity) from a *local* weights file.

    Only for comparison with the literature (an Inception FID is :func:`frechet_distance` on these):
    on 28 px grayscale X-rays upsampled to 299 px RGB the ImageNet features fit poorly, which is why the
    in-domain extractor is the default. Needs the optional ``torch-fidelity`` package and the user's
    copy of its ``inception-v3-compat`` weights; nothing is downloaded (a missing file is an error).

    Args:
        images: (N, C, H, W) in [0, 1]; grayscale is repeated to RGB; torch-fidelity resizes to 299 px.
        weights_path: local Inception-v3 weights file for torch-fidelity's ``FeatureExtractorInceptionV3``.
        batch_size: inference batch size.

    Raises:
        FileNotFoundError: ``weights_path`` does not exist.
        ImportError: torch-fidelity is not installed.
    """
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise FileNotFoundError(f"Inception weights file {weights_path} not found (nothing is downloaded)")
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as err:
        raise ImportError(
            "Inception FID needs the optional package torch-fidelity (pip install torch-fidelity) and a "
            "local copy of its Inception-v3 weights"
        ) from err
    model = FeatureExtractorInceptionV3(  # pragma: no cover - needs the optional package and user weights
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights_path)
    ).eval()
    out = []  # pragma: no cover
    with torch.no_grad():  # pragma: no cover
        for i in range(0, images.shape[0], batch_size):
            b = images[i : i + batch_size].float()
            b = b.repeat(1, 3, 1, 1) if b.shape[1] == 1 else b
            out.append(model((b.clamp(0, 1) * 255).round().to(torch.uint8))[0].double().cpu().numpy())
    return np.concatenate(out)  # pragma: no cover
