"""Label faithfulness: does switching a finding on in the generator's label vector make it visible?

Conditional AUC (:func:`medgan_aug.metrics.conditional_fidelity`) is GAN-test (Shmelkov, Schmid &
Alahari, "How good is my GAN?", ECCV 2018): a classifier trained on real images scores generated images
against the labels they were drawn with, over *different* noise vectors, so it mixes what the label does
with what the noise does and with the classifier's own faults. This measure holds the noise fixed and
intervenes on one label (a paired, counterfactual comparison): for each noise vector ``z`` and finding
``k``, the images ``G(z, y with k on)`` and ``G(z, y with k off)`` are scored by a classifier validated
on held-out real images, and the change in its score for ``k`` is the label's effect. A generator that
ignores its labels scores a shift of exactly 0 and an AUC of exactly 0.5 (the paired images are
identical); one that draws finding ``k`` so that the classifier sees it scores a shift up to 1 and an
AUC up to 1. The classifier bounds what can be seen: a finding it does
not detect on real held-out images (AUC ~0.5 there) cannot show faithfulness here.

:func:`real_label_separation` measures that bound on the shift's own scale: the same classifier's mean
score on held-out real images with the finding minus its mean score on those without. A generator that
drew the finding as it appears in real images would move the score by about this much; a weak or
poorly calibrated classifier (scores near a low base rate) makes it small, whatever the generator does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.metrics.classification import default_label_names, rank_auc
from medgan_aug.metrics.extractor import check_images_and_labels, classifier_scores
from medgan_aug.networks.classifiers import scores_from_logits
from medgan_aug.networks.dcgan import to_unit_range
from medgan_aug.networks.model_file import check_generator_protocol
from medgan_aug.utils.devices import module_device
from medgan_aug.utils.tasks import MULTI_LABEL, check_task, is_softmax_task
from medgan_aug.utils.validation import check_integer

__all__ = ["label_faithfulness", "real_label_separation"]


def _base_labels(base_labels: Any, n: int, num_labels: int) -> torch.Tensor:
    if base_labels is None:
        return torch.zeros(n, num_labels)
    base = torch.as_tensor(np.asarray(base_labels, dtype=np.float32))
    if base.shape != (n, num_labels):
        raise ValueError(f"base_labels must be ({n}, {num_labels}), got {tuple(base.shape)}")
    if not bool(((base == 0) | (base == 1)).all()):
        raise ValueError("base_labels must hold only 0 and 1")
    return base


def _finding_scores(
    generator: nn.Module,
    classifier: nn.Module,
    z: torch.Tensor,
    labels: torch.Tensor,
    k: int,
    *,
    task: str,
    batch_size: int,
) -> np.ndarray:
    """(n,) the classifier's score for finding ``k`` on ``G(z, labels)``, batch by batch (each module on its
    device)."""
    g_device, c_device = module_device(generator), module_device(classifier)
    out = []
    for i in range(0, z.shape[0], batch_size):
        images = to_unit_range(
            generator(z[i : i + batch_size].to(g_device), labels[i : i + batch_size].to(g_device))
        )
        logits = classifier(images.float().to(c_device))
        out.append(scores_from_logits(logits, task)[:, k].double().cpu().numpy())
    return np.concatenate(out)


def _switch_effect(
    generator: nn.Module,
    classifier: nn.Module,
    z: torch.Tensor,
    base: torch.Tensor,
    k: int,
    *,
    task: str,
    batch_size: int,
) -> dict[str, float]:
    """Finding ``k`` switched on and off in ``base``, same noise: the mean and sd of the score shift, and the
    on/off AUC."""
    on, off = base.clone(), base.clone()
    on[:, k], off[:, k] = 1.0, 0.0
    s_on = _finding_scores(generator, classifier, z, on, k, task=task, batch_size=batch_size)
    s_off = _finding_scores(generator, classifier, z, off, k, task=task, batch_size=batch_size)
    diff = s_on - s_off
    targets = np.concatenate([np.ones(z.shape[0]), np.zeros(z.shape[0])])
    return {
        "shift": float(diff.mean()),
        "shift_std": float(diff.std()),
        "auc": float(rank_auc(targets, np.concatenate([s_on, s_off]), axis=0)),
    }


@torch.no_grad()
def label_faithfulness(
    generator: nn.Module,
    classifier: nn.Module,
    *,
    num_samples: int = 256,
    base_labels: Any = None,
    seed: int = 0,
    task: str = MULTI_LABEL,
    label_names: Sequence[str] | None = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Per finding: the classifier's score shift and on/off AUC when only that label is switched.

    For ``num_samples`` noise vectors (drawn from ``seed``) and each finding ``k``: ``on`` is the base label
    vector with ``k`` set to 1, ``off`` with ``k`` set to 0 (other findings as in the base); both go through
    the generator with the same noise. ``shift`` is the mean over noise vectors of ``score_k(on) -
    score_k(off)`` (scores are probabilities), ``auc`` the AUC of telling the ``on`` images from the ``off``
    images by ``score_k`` (:func:`medgan_aug.metrics.rank_auc`; 0.5 when they cannot be told apart).

    Args:
        generator: the generator protocol (``image_size``, ``latent_dim``, ``num_labels``,
            ``out_channels``; ``forward(z, labels)`` in [-1, 1]); run in eval mode, then its mode restored.
        classifier: maps (B, C, H, W) images in [0, 1] to logits (B, num_labels), column ``k`` for
            finding ``k``; validate it on held-out real images (its AUC there bounds what this can show).
        num_samples: noise vectors.
        base_labels: (num_samples, num_labels) 0/1 context vectors (e.g. real label vectors); None: all
            zeros (finding ``k`` alone against no finding).
        seed: seed of the noise.
        task: ``"multi-label, binary-class"`` or ``"binary-class"`` (a one-hot class cannot be switched
            on alone).
        label_names: names of the findings (medmnist's two binary class names are accepted).
        batch_size: generation batch size (noise and images go to each module's device).

    Returns:
        ``{"n", "seed", "base_labels", "per_label": {name: {"shift", "shift_std", "auc"}}, "mean_shift",
        "mean_auc"}``.
    """
    check_generator_protocol(generator)
    check_task(task)
    if is_softmax_task(task):
        raise ValueError(f"label faithfulness switches single findings; {task!r} labels are one-hot classes")
    num_labels = int(generator.num_labels)
    if num_labels < 1:
        raise ValueError("the generator is unconditional (num_labels=0): there is no label to switch")
    n = check_integer("num_samples", num_samples, 2)
    batch_size = check_integer("batch_size", batch_size)
    names = default_label_names(label_names, num_labels, task)
    base = _base_labels(base_labels, n, num_labels)
    z = torch.randn(n, int(generator.latent_dim), generator=torch.Generator().manual_seed(int(seed)))
    modes = (generator.training, classifier.training)
    generator.eval()
    classifier.eval()
    try:
        per_label = {
            name: _switch_effect(generator, classifier, z, base, k, task=task, batch_size=batch_size)
            for k, name in enumerate(names)
        }
    finally:
        generator.train(modes[0])
        classifier.train(modes[1])
    return {
        "n": n,
        "seed": int(seed),
        "base_labels": "all findings off" if base_labels is None else "given label vectors",
        "per_label": per_label,
        "mean_shift": float(np.mean([v["shift"] for v in per_label.values()])),
        "mean_auc": float(np.mean([v["auc"] for v in per_label.values()])),
    }


def real_label_separation(
    classifier: nn.Module,
    images: torch.Tensor,
    labels: Any,
    *,
    task: str = MULTI_LABEL,
    label_names: Sequence[str] | None = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Per finding: how far the classifier's score separates real images with the finding from those without.

    The reference for :func:`label_faithfulness`'s ``shift``, on the same scale: ``shift`` here is the mean
    score for ``k`` over images labelled ``k`` minus the mean over images not labelled ``k``, and ``auc``
    the classifier's AUC for ``k`` on these images. Findings without both classes among ``labels`` are
    left out (``skipped``).

    Args:
        classifier: maps (B, C, H, W) images in [0, 1] to logits (B, num_labels).
        images: (N, C, H, W) held-out real images in [0, 1].
        labels: (N, num_labels) 0/1 label vectors of ``images``.
        task, label_names, batch_size: as for :func:`label_faithfulness`.

    Returns:
        ``{"n", "per_label": {name: {"shift", "auc", "n_positive"}}, "skipped", "mean_shift", "mean_auc"}``.
    """
    check_task(task)
    if is_softmax_task(task):
        raise ValueError(f"label separation is per finding; {task!r} labels are one-hot classes")
    y = check_images_and_labels(images, labels)
    names = default_label_names(label_names, y.shape[1], task)
    scores = classifier_scores(classifier, images, task=task, batch_size=batch_size)
    if scores.shape[1] != y.shape[1]:
        raise ValueError(f"the classifier gives {scores.shape[1]} scores per image for {y.shape[1]} labels")
    per_label: dict[str, dict[str, float]] = {}
    skipped = []
    for k, name in enumerate(names):
        positive = y[:, k] > 0.5
        if positive.all() or not positive.any():
            skipped.append(name)
            continue
        s = scores[:, k]
        per_label[name] = {
            "shift": float(s[positive].mean() - s[~positive].mean()),
            "auc": float(rank_auc(positive.astype(np.float64), s, axis=0)),
            "n_positive": int(positive.sum()),
        }
    values = list(per_label.values())
    return {
        "n": int(y.shape[0]),
        "per_label": per_label,
        "skipped": skipped,
        "mean_shift": float(np.mean([v["shift"] for v in values])) if values else None,
        "mean_auc": float(np.mean([v["auc"] for v in values])) if values else None,
    }
