"""Memorization audit: are generated images copies of training images?

A generator trained on a few hundred images (or on 1% of ChestMNIST) can reproduce its training
images, which breaks both the augmentation argument (nothing new is added) and any privacy claim of
synthetic data. The audit measures it instead of assuming it:

1. for every generated image, the distance to its nearest neighbour among the images the GAN was
   trained on;
2. the same nearest-neighbour distance for *held-out real* images (val/test, never seen by the GAN)
   against the same training images: how close a new, genuinely different radiograph usually gets;
3. the share of generated images at or below the 1st percentile of the real-to-real distances. For
   independent new images this share is about 1% by construction; a generator that copies its training
   data scores far higher (verbatim copies: 100%).

Comparing generated-to-train with held-out-to-train nearest-neighbour distances is the idea of the
data-copying test of Meehan, Chaudhuri & Dasgupta, "A Non-Parametric Test to Detect Data-Copying in
Generative Models", AISTATS 2020 (here reduced to one interpretable share); training-set nearest
neighbours are the usual evidence of GAN memorization (e.g. Webster, Rabin, Simon & Jurie, "Detecting
Overfitting of Deep Generative Networks via Latent Recovery", CVPR 2019).

Distances are Euclidean in pixel space (images in [0, 1]) and, optionally, in the feature space of the
in-domain extractor; both are reported as root-mean-square per dimension (``L2 / sqrt(D)``), so a pixel
distance of 0.05 is an RMS difference of 5% of the intensity range.
A low share does not prove privacy (near-copies of parts of an image, or of one patient's anatomy, pass
this test); a high share is a clear warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["EXACT_COPY_RMS", "nearest_neighbours", "MemorizationAudit", "memorization_audit"]


#: RMS distance at or below which a generated image counts as an exact copy (float rounding only; one grey
#: level of difference in a single pixel of a 28x28 image is already 1/255/28 = 1.4e-4).
EXACT_COPY_RMS = 1e-6


def _flat(name: str, x: Any) -> torch.Tensor:
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim < 2 or t.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty (N, ...) array of images or features, got shape {tuple(t.shape)}"
        )
    t = t.reshape(t.shape[0], -1).double()
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def nearest_neighbours(queries: Any, references: Any, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean nearest neighbour in ``references`` of every row of ``queries``.

    Computed in float64 by direct differences (no ``|a|^2 + |b|^2 - 2ab`` shortcut), so an exact copy
    has distance exactly 0.

    Args:
        queries: (N, ...) images or features (flattened per row).
        references: (M, ...) with the same number of values per row.
        chunk: query rows per block.

    Returns:
        ``(distances (N,) float64, indices (N,) int64)``; distances are plain L2.
    """
    q, r = _flat("queries", queries), _flat("references", references)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} values per row but references have {r.shape[1]}")
    dist, idx = [], []
    for i in range(0, q.shape[0], chunk):
        d = torch.cdist(q[i : i + chunk], r, compute_mode="donot_use_mm_for_euclid_dist")
        values, where = d.min(dim=1)
        dist.append(values)
        idx.append(where)
    return torch.cat(dist).numpy(), torch.cat(idx).numpy().astype(np.int64)


def _quantiles(d: np.ndarray) -> dict[str, float]:
    return {
        "min": float(d.min()),
        "p1": float(np.percentile(d, 1)),
        "p5": float(np.percentile(d, 5)),
        "median": float(np.median(d)),
        "mean": float(d.mean()),
    }


@dataclass
class MemorizationAudit:
    """Result of :func:`memorization_audit` (distances are RMS per dimension, ``L2 / sqrt(D)``).

    Attributes:
        space: what was compared ("pixel", "feature", ...).
        percentile: the real-to-real percentile defining the threshold (1.0 = 1st percentile).
        threshold: that percentile of ``heldout_distances``.
        synthetic_distances: (N,) distance of each generated image to its nearest training image.
        synthetic_neighbours: (N,) index (in the training set given) of that nearest training image.
        heldout_distances: (H,) the same for held-out real images.
        dimension: D, values per row.
    """

    space: str
    percentile: float
    threshold: float
    synthetic_distances: np.ndarray
    synthetic_neighbours: np.ndarray
    heldout_distances: np.ndarray
    dimension: int

    @property
    def share_flagged(self) -> float:
        """Share of generated images at or below the threshold (real held-out images: ~percentile/100)."""
        return float(np.mean(self.synthetic_distances <= self.threshold))

    @property
    def heldout_share_flagged(self) -> float:
        """The same share for the held-out real images (the reference, ~percentile/100 by construction)."""
        return float(np.mean(self.heldout_distances <= self.threshold))

    def closest(self, k: int = 8, distinct_train: bool = True) -> list[dict[str, Any]]:
        """The ``k`` generated images closest to a training image, closest first.

        With ``distinct_train`` each training image is paired once (with its closest generated image)
        so that one over-represented training image does not fill the list; if fewer than ``k`` training
        images are nearest neighbours at all, the list is filled up with the next closest pairs.
        """
        order = np.argsort(self.synthetic_distances, kind="stable")
        chosen: list[int] = []
        if distinct_train:
            used: set[int] = set()
            for i in order:
                j = int(self.synthetic_neighbours[i])
                if j not in used:
                    used.add(j)
                    chosen.append(int(i))
                if len(chosen) == k:
                    break
        taken = set(chosen)
        chosen += [int(i) for i in order if int(i) not in taken][: max(0, k - len(chosen))]
        chosen.sort(key=lambda i: (self.synthetic_distances[i], i))
        return [
            {
                "synthetic_index": i,
                "train_index": int(self.synthetic_neighbours[i]),
                "distance": float(self.synthetic_distances[i]),
            }
            for i in chosen
        ]

    def summary(self, k: int = 8) -> dict[str, Any]:
        """Plain-typed summary for ``metrics.json``."""
        syn, held = self.synthetic_distances, self.heldout_distances
        return {
            "space": self.space,
            "distance": "euclidean / sqrt(dimension) (RMS per dimension)",
            "dimension": self.dimension,
            "n_synthetic": int(syn.size),
            "n_heldout": int(held.size),
            "percentile": self.percentile,
            "threshold": self.threshold,
            "share_flagged": self.share_flagged,
            "heldout_share_flagged": self.heldout_share_flagged,
            "n_exact_copies": int(np.sum(syn <= EXACT_COPY_RMS)),
            "median_ratio_synthetic_to_heldout": float(np.median(syn) / max(np.median(held), 1e-12)),
            "synthetic_nn": _quantiles(syn),
            "heldout_nn": _quantiles(held),
            "closest": self.closest(k),
        }


def memorization_audit(
    synthetic: Any,
    train: Any,
    heldout: Any,
    *,
    percentile: float = 1.0,
    space: str = "pixel",
) -> MemorizationAudit:
    """Nearest-training-image distances of generated images against the real-to-real baseline.

    Args:
        synthetic: (N, ...) generated images (in [0, 1]) or their features.
        train: (M, ...) the images the generator was trained on (same space).
        heldout: (H, ...) real images the generator never saw (val/test), same space.
        percentile: percentile of held-out-to-train distances used as the threshold (0 < p < 100).
        space: a name for the space compared (recorded in the result).

    Returns:
        A :class:`MemorizationAudit`; ``share_flagged`` is the headline number.
    """
    if not isinstance(percentile, (int, float)) or not 0.0 < float(percentile) < 100.0:
        raise ValueError(f"percentile must be in (0, 100), got {percentile!r}")
    syn_d, syn_i = nearest_neighbours(synthetic, train)
    held_d, _ = nearest_neighbours(heldout, train)
    dim = int(_flat("train", train).shape[1])
    scale = 1.0 / np.sqrt(dim)
    syn_d, held_d = syn_d * scale, held_d * scale
    threshold = float(np.percentile(held_d, float(percentile)))
    return MemorizationAudit(
        space=str(space),
        percentile=float(percentile),
        threshold=threshold,
        synthetic_distances=syn_d,
        synthetic_neighbours=syn_i,
        heldout_distances=held_d,
        dimension=dim,
    )
