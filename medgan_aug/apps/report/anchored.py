"""The report's headline distances: generated and real training images against held-out patients' images,
in more than one feature space (:mod:`medgan_aug.metrics.heldout` says why).

Feature spaces: the trained in-domain extractor (fitted on the training split: it may flatter images that look
like them), a random-initialised CNN (fitted on nothing, always computed) and, when the report computes
Inception features, ImageNet Inception-v3. Each space gets ``heldout_anchored_distances`` with the same
held-out anchor (val + test: patients outside the training split), the whole real training split as the real
reference, and its patient-disjoint floor where the data file gives patient ids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from medgan_aug.metrics.heldout import heldout_anchored_distances

__all__ = ["FEATURE_SPACES", "anchored_block"]

#: How metrics.json and the HTML page name each feature space.
FEATURE_SPACES = {
    "extractor": "trained in-domain extractor (fitted on the training split)",
    "random_cnn": "random-initialised small CNN (fitted on nothing)",
    "inception": "ImageNet Inception-v3",
}


def anchored_block(
    features: dict[str, Callable[[torch.Tensor], np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]],
    heldout: torch.Tensor,
    train: torch.Tensor,
    synthetic: torch.Tensor,
    *,
    train_patients: np.ndarray | None,
    repeats: int,
    seed: int,
) -> dict[str, Any]:
    """The ``heldout_anchored`` block of metrics.json.

    Args:
        features: per feature space (keys of :data:`FEATURE_SPACES`), either a function images -> (N, D)
            features, or the (held-out, train, synthetic) features already computed.
        heldout, train, synthetic: the images (N, C, H, W) in [0, 1].
        train_patients: patient id per training image, or None.
        repeats, seed: draws of :func:`heldout_anchored_distances`.

    Returns:
        dict with ``anchor``, ``real_reference``, ``headline`` (the extractor space's ratio, or the first
        space's) and ``spaces``: per space its name and the distances.
    """
    spaces: dict[str, Any] = {}
    for name, made in features.items():
        if callable(made):
            made = (made(heldout), made(train), made(synthetic))
        held_f, train_f, syn_f = made
        spaces[name] = {
            "features": FEATURE_SPACES[name],
            **heldout_anchored_distances(
                held_f, train_f, syn_f, train_patients=train_patients, repeats=repeats, seed=seed
            ),
        }
    first = "extractor" if "extractor" in spaces else next(iter(spaces))
    return {
        "anchor": "held-out real images (val + test: patients outside the training split)",
        "real_reference": "real training split, all images",
        "ratio": "FD(synthetic, held-out) / FD(real training, held-out) at equal n; 1 = as close to new "
        "patients as real training images",
        "headline": {
            "space": first,
            "ratio": spaces[first]["ratio"],
            "ratio_std": spaces[first]["ratio_std"],
        },
        "spaces": spaces,
    }
