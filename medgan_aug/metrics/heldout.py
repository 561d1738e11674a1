"""Distances anchored on held-out patients: how far generated images are from *new* patients' images,
beside how far the real training images are from them.

Why not the training-split floor. A generator models the patients it was trained on. Compared with a half of
the training split, it is compared with those same patients, and so is the classic floor (two random halves
of the training split share patients). On NIH1000 (691 training images of 185 patients, test 233 images of
53 others; train-fitted extractor, n = 233) random training halves are 1.45 apart, patient-disjoint halves
13.5 +- 8.8 and test vs train 8.47: images of *other* patients are as far as test images, and a generator
close to the shared-patient floor may only have learned the 185 patients. The question an augmentation
tool must answer is whether generated images stand in for real ones on patients the classifier has not
seen. So every set is compared with the same held-out anchor H (images of patients outside the training
split):

* ``synthetic``: generated images S vs H;
* ``train``: real training images T vs H, the distance that real training data of the same size has;
* ``ratio`` = FD(S, H) / FD(T, H), the headline: 1 means "as close to new patients as real training
  images are", below 1 closer, above 1 farther;
* ``floor``: two halves of the training split, patient-disjoint where patient ids exist (else random
  halves, with ``floor_kind`` saying so): the distance between two real samples that share no patient.

All sets are compared at one size n (Fréchet distance is biased upwards for small sets), n being the smallest
of the held-out set, the generated set, the training set and, for the floor, each half.
The metrics themselves are those of :mod:`medgan_aug.metrics.generative` (Fréchet distance, Heusel et al.
2017; KID, Bińkowski et al. 2018; improved precision and recall, Kynkäänniemi et al. 2019).

Feature spaces. A feature extractor fitted on the training images flatters images that look like them, so
the report gives these numbers in more than one space: the trained extractor, :func:`random_cnn_features` (the
same small CNN with a fixed random initialisation, fitted on nothing: cheap, always available; random
convolutional features are a known neutral baseline for distribution distances, Naeem et al. 2020) and,
with the ``inception`` extra, ImageNet Inception-v3.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from medgan_aug.engines.classifier_trainer import extract_features
from medgan_aug.metrics.generative import (
    frechet_distance,
    kernel_distance,
    precision_recall,
)
from medgan_aug.networks.classifiers import build_classifier
from medgan_aug.utils.validation import check_integer

__all__ = [
    "RANDOM_CNN_SEED",
    "RANDOM_CNN_SCALE",
    "patient_disjoint_halves",
    "random_cnn_features",
    "heldout_anchored_distances",
]

#: Initialisation seed of the neutral random-CNN feature space (fixed, so numbers compare across runs).
RANDOM_CNN_SEED = 20240101

#: Fixed factor on the random CNN's features (see :func:`random_cnn_features`).
RANDOM_CNN_SCALE = 100.0

_METRICS = ("frechet_distance", "kid", "precision", "recall")


def patient_disjoint_halves(patients: Any, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split rows into two halves that share no patient, of nearly equal numbers of rows.

    Patients are visited in random order and each goes, whole, to the half with fewer rows so far (ties to the
    first); with many patients the halves differ by at most the largest patient's image count.

    Args:
        patients: (N,) patient id per row.
        rng: the random generator of the patients' order.

    Returns:
        (rows of half A, rows of half B), sorted row indices.
    """
    ids = np.asarray(patients).astype(str)
    if ids.ndim != 1 or ids.size < 2:
        raise ValueError(f"patients must be a flat array of at least 2 ids, got shape {ids.shape}")
    unique, codes = np.unique(ids, return_inverse=True)
    if unique.size < 2:
        raise ValueError("patient-disjoint halves need at least two patients")
    rows_of = [np.flatnonzero(codes == c) for c in range(unique.size)]
    halves: list[list[np.ndarray]] = [[], []]
    sizes = [0, 0]
    for c in rng.permutation(unique.size):
        side = 0 if sizes[0] <= sizes[1] else 1
        halves[side].append(rows_of[c])
        sizes[side] += rows_of[c].size
    return tuple(np.sort(np.concatenate(h)) for h in halves)  # type: ignore[return-value]


@torch.no_grad()
def random_cnn_features(
    images: torch.Tensor, *, seed: int = RANDOM_CNN_SEED, device: str = "cpu"
) -> np.ndarray:
    """Penultimate features (N, D) float64 of the project's small CNN with a fixed random initialisation.

    Nothing is fitted, so no image set is favoured: a neutral feature space beside the trained extractor.
    At its random initialisation the network's features are small (per-dimension sd about 0.003 on NIH1000),
    so they are multiplied by :data:`RANDOM_CNN_SCALE`: the covariances then sit far above the 1e-6 that
    :func:`~medgan_aug.metrics.generative.frechet_distance` adds to a near-singular pair, and a common scale
    multiplies every Fréchet distance by the same factor, leaving ratios and floors comparable.

    Args:
        images: (N, C, H, W) in [0, 1].
        seed: initialisation seed (default :data:`RANDOM_CNN_SEED`).
        device: where to run.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(
            f"images must be an (N, C, H, W) tensor, got {getattr(images, 'shape', type(images))}"
        )
    model = build_classifier("small_cnn", int(images.shape[1]), 1, int(images.shape[-1]), seed=seed)
    return extract_features(model, images.float(), device=device).astype(np.float64) * RANDOM_CNN_SCALE


def _measure(anchor: torch.Tensor, other: torch.Tensor, kid_subsets: int, pr_k: int, seed: int) -> dict:
    kid, _ = kernel_distance(other, anchor, num_subsets=kid_subsets, seed=seed)
    pr = precision_recall(anchor, other, k=pr_k)
    return {"frechet_distance": frechet_distance(other, anchor), "kid": kid, **pr}


def _feature_sets(heldout: Any, train: Any, synthetic: Any) -> dict[str, torch.Tensor]:
    """The three feature arrays as float64 tensors, checked finite, 2-d and of one width."""
    sets = {}
    for name, x in (("heldout", heldout), ("train", train), ("synthetic", synthetic)):
        t = torch.as_tensor(np.asarray(x, dtype=np.float64))
        if t.ndim != 2 or not torch.isfinite(t).all():
            raise ValueError(f"{name}_features must be a finite (N, D) array, got shape {tuple(t.shape)}")
        sets[name] = t
    widths = {name: t.shape[1] for name, t in sets.items()}
    if len(set(widths.values())) != 1:
        raise ValueError(f"feature widths differ: {widths}")
    return sets


def _training_halves(
    train_patients: np.ndarray | None, n_train: int, repeats: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One pair of training-row halves per repeat: patient-disjoint with ``train_patients``, else random."""
    halves = []
    for _ in range(repeats):
        if train_patients is None:
            perm = rng.permutation(n_train)
            halves.append((perm[: n_train // 2], perm[n_train // 2 :]))
        else:
            halves.append(patient_disjoint_halves(train_patients, rng))
    return halves


def _common_size(
    sets: dict[str, torch.Tensor], halves: list[tuple[np.ndarray, np.ndarray]], pr_k: int
) -> int:
    """The one size n every set is compared at (the smallest set or half); ValueError if n <= ``pr_k``."""
    smallest_half = min(min(a.size, b.size) for a, b in halves)
    n = min(sets["heldout"].shape[0], sets["synthetic"].shape[0], sets["train"].shape[0], smallest_half)
    if n <= pr_k:
        raise ValueError(
            f"too few images for held-out-anchored distances: n={n} (held-out {sets['heldout'].shape[0]}, "
            f"generated {sets['synthetic'].shape[0]}, training halves {smallest_half}), "
            f"k={pr_k}"
        )
    return n


def _measure_repeat(
    sets: dict[str, torch.Tensor],
    halves: tuple[np.ndarray, np.ndarray],
    n: int,
    rng: np.random.Generator,
    kid_subsets: int,
    pr_k: int,
) -> dict[str, dict]:
    """One repeat: n held-out rows as the anchor, then S vs H, T vs H and half B vs half A, each at n rows."""

    def draw(t: torch.Tensor, rows: np.ndarray | None = None) -> torch.Tensor:
        rows = np.arange(t.shape[0]) if rows is None else rows
        return t[torch.from_numpy(rng.choice(rows, n, replace=False))]

    half_a, half_b = halves
    anchor = draw(sets["heldout"])
    rep_seed = int(rng.integers(2**31))
    return {
        "synthetic": _measure(anchor, draw(sets["synthetic"]), kid_subsets, pr_k, rep_seed),
        "train": _measure(anchor, draw(sets["train"]), kid_subsets, pr_k, rep_seed),
        "floor": _measure(
            draw(sets["train"], half_a), draw(sets["train"], half_b), kid_subsets, pr_k, rep_seed
        ),
    }


def _means_and_stds(measured: list[dict[str, dict]]) -> dict[str, Any]:
    """The ratio FD(S, H) / FD(T, H) and, per metric and kind, the mean and standard deviation over
    repeats."""
    ratios = [m["synthetic"]["frechet_distance"] / m["train"]["frechet_distance"] for m in measured]
    out: dict[str, Any] = {"ratio": float(np.mean(ratios)), "ratio_std": float(np.std(ratios))}
    for metric in _METRICS:
        out[metric] = {}
        for kind in ("synthetic", "train", "floor"):
            values = [m[kind][metric] for m in measured]
            out[metric][kind] = float(np.mean(values))
            out[metric][f"{kind}_std"] = float(np.std(values))
    return out


def heldout_anchored_distances(
    heldout_features: Any,
    train_features: Any,
    synthetic_features: Any,
    *,
    train_patients: Any = None,
    repeats: int = 5,
    seed: int = 0,
    kid_subsets: int = 50,
    pr_k: int = 3,
) -> dict[str, Any]:
    """Generated and real training images against held-out images, at equal n, with a patient-disjoint floor.

    Each repeat draws n rows of the held-out, training and generated features (n: see the module docstring)
    and two patient-disjoint halves of the training rows (random halves without ``train_patients``), and
    measures Fréchet distance, KID, precision and recall of S vs H, T vs H and half B vs half A. Precision
    is the share of the compared set inside the anchor's k-NN manifold, recall the reverse.

    Args:
        heldout_features: (N_h, D) features of held-out real images (patients outside the training split).
        train_features: (N_t, D) features of the real training images.
        synthetic_features: (N_s, D) features of generated images.
        train_patients: optional (N_t,) patient id per training row, for the patient-disjoint floor.
        repeats: random draws; means and standard deviations over them are reported.
        seed: seed of the draws.
        kid_subsets: subsets per KID estimate.
        pr_k: k of precision/recall.

    Returns:
        dict with ``n``, ``repeats``, ``floor_kind`` ("patient-disjoint training halves" or "random training
        halves"), ``ratio`` and ``ratio_std`` (FD(S, H) / FD(T, H), per repeat), and per metric
        ``{"synthetic", "train", "floor"}`` means with ``*_std``.
    """
    sets = _feature_sets(heldout_features, train_features, synthetic_features)
    repeats = check_integer("repeats", repeats)
    n_train = sets["train"].shape[0]
    if train_patients is not None:
        train_patients = np.asarray(train_patients)
        if train_patients.shape != (n_train,):
            raise ValueError(
                f"train_patients must hold one id per training row ({n_train}), got shape {train_patients.shape}"
            )
    rng = np.random.default_rng(seed)
    halves = _training_halves(train_patients, n_train, repeats, rng)
    n = _common_size(sets, halves, pr_k)
    measured = [_measure_repeat(sets, pair, n, rng, kid_subsets, pr_k) for pair in halves]
    floor_kind = "random training halves" if train_patients is None else "patient-disjoint training halves"
    return {"n": int(n), "repeats": repeats, "floor_kind": floor_kind, **_means_and_stds(measured)}
