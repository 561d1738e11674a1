"""The in-domain feature extractor behind the generative distances: its version, data and weights
fingerprints, cache file name, validation AUC and features; plus conditional fidelity. It is fitted on the
real training split and selected on the validation split by :mod:`medgan_aug.apps.extractor_fit` (training
lives in ``apps``). (The opt-in Inception features are :mod:`medgan_aug.metrics.inception`'s.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.engines.classifier_trainer import extract_features, predict
from medgan_aug.metrics.classification import evaluate_scores
from medgan_aug.networks.classifiers import scores_from_logits
from medgan_aug.utils.devices import module_device

__all__ = [
    "EXTRACTOR_VERSION",
    "EXTRACTOR_FORMAT_NOTE",
    "data_fingerprint",
    "weights_fingerprint",
    "default_extractor_name",
    "validation_auc",
    "extractor_features",
    "conditional_fidelity",
    "classifier_scores",
    "check_images_and_labels",
]


#: The extractor recipe's version, in every extractor file's meta and default name. v1 (files without a
#: version): trained to the last step on train. v2: selected on the validation split's AUC.
EXTRACTOR_VERSION = "v2"

#: One sentence every report prints beside the Fréchet numbers.
EXTRACTOR_FORMAT_NOTE = (
    "Distances are computed on the penultimate features of an in-domain CNN trained on the real training "
    "split and selected on the validation split (not ImageNet Inception-v3): they are not Inception FIDs "
    "and are comparable only between runs evaluated with the same extractor file."
)


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
    dataset: Any,
    validation: Any,
    arch: str = "small_cnn",
    iterations: int = 1000,
    seed: int = 0,
    eval_every: int = 25,
    patience: int | None = 10,
) -> str:
    """File name (cache key) of an extractor: version, flag, size, arch, selection settings, seed, data.

    The trailing fingerprint covers the training *and* the validation split (selection reads both).
    """
    fp = hashlib.sha256(
        (
            data_fingerprint(dataset.images, dataset.labels)
            + data_fingerprint(validation.images, validation.labels)
        ).encode()
    ).hexdigest()[:12]
    stop = f"pat{patience}" if patience is not None else "nostop"
    return (
        f"extractor_{EXTRACTOR_VERSION}_{dataset.flag}_{dataset.size}px_{arch}_max{iterations}it_"
        f"every{eval_every}_{stop}_seed{seed}_{fp}.pt"
    )


def validation_auc(model: nn.Module, dataset: Any, device: str | torch.device = "cpu") -> float:
    """Mean AUC of ``model`` on a labelled dataset (findings with both classes; the selection score)."""
    scores, targets = predict(model, dataset, task=str(dataset.task), device=device)
    return float(evaluate_scores(targets, scores, task=str(dataset.task))["auc"])


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
    labels = check_images_and_labels(images, labels)
    scores = classifier_scores(model, images, task=task, batch_size=batch_size)
    return evaluate_scores(labels, scores, task=task, label_names=label_names)


def check_images_and_labels(images: Any, labels: Any) -> np.ndarray:
    """Check an (N, C, H, W) image tensor and its (N, L) label vectors; return the labels as float64."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(
            f"images must be an (N, C, H, W) tensor, got {getattr(images, 'shape', type(images))}"
        )
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim != 2 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels must be ({images.shape[0]}, L) to match the images, got {labels.shape}")
    return labels


@torch.no_grad()
def classifier_scores(
    model: nn.Module, images: torch.Tensor, *, task: str = "multi-label, binary-class", batch_size: int = 256
) -> np.ndarray:
    """A classifier's scores (probabilities, (N, L) float64) for images (N, C, H, W) in [0, 1], in eval mode
    (the model's mode is restored)."""
    was_training, device = model.training, module_device(model)
    model.eval()
    scores = []
    try:
        for i in range(0, images.shape[0], batch_size):
            logits = model(images[i : i + batch_size].float().to(device))
            scores.append(scores_from_logits(logits, task).double().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(scores)
