"""The in-domain feature extractor behind the generative distances: fitted on the real training split,
selected on the validation split, versioned and cached by data and weights fingerprint; plus conditional
fidelity. (The opt-in Inception features are :mod:`medgan_aug.metrics.inception`'s.)
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.engines.classifier_trainer import extract_features, predict, train_classifier
from medgan_aug.handlers.model_selection import ValidationSelection
from medgan_aug.metrics.classification import evaluate_scores
from medgan_aug.metrics.generative import check_positive_int
from medgan_aug.networks.classifiers import CLASSIFIER_NAMES, build_classifier, scores_from_logits
from medgan_aug.networks.model_file import load_classifier, save_classifier
from medgan_aug.utils.devices import module_device

__all__ = [
    "EXTRACTOR_VERSION",
    "EXTRACTOR_FORMAT_NOTE",
    "data_fingerprint",
    "weights_fingerprint",
    "default_extractor_name",
    "validation_auc",
    "fit_feature_extractor",
    "load_or_fit_extractor",
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


def _check_dataset(dataset: Any, role: str = "training") -> None:
    missing = [
        a
        for a in ("images", "labels", "task", "num_labels", "num_channels", "size", "flag")
        if not hasattr(dataset, a)
    ]
    if missing:
        raise TypeError(f"{role} dataset must be a MedMNISTDataset; {type(dataset).__name__} lacks {missing}")
    if len(dataset) < 2:
        raise ValueError(f"{role} dataset has {len(dataset)} images; the feature extractor needs more")


def _check_selection_splits(dataset: Any, validation: Any) -> None:
    """The extractor is fitted on train and selected on val: the test split is never an input."""
    _check_dataset(dataset, "training")
    _check_dataset(validation, "validation")
    for role, ds in (("training", dataset), ("validation", validation)):
        if getattr(ds, "split", None) == "test":
            raise ValueError(
                f"the {role} dataset is the test split: the extractor is fitted on train and selected on "
                "val only (the test split is read once, for the reported number)"
            )
    if (validation.flag, validation.size, validation.num_labels) != (
        dataset.flag,
        dataset.size,
        dataset.num_labels,
    ):
        raise ValueError(
            f"validation data ({validation.flag}, {validation.size}px, {validation.num_labels} labels) "
            f"does not match the training data ({dataset.flag}, {dataset.size}px, {dataset.num_labels})"
        )


def validation_auc(model: nn.Module, dataset: Any, device: str | torch.device = "cpu") -> float:
    """Mean AUC of ``model`` on a labelled dataset (findings with both classes; the selection score)."""
    scores, targets = predict(model, dataset, task=str(dataset.task), device=device)
    return float(evaluate_scores(targets, scores, task=str(dataset.task))["auc"])


def fit_feature_extractor(
    dataset: Any,
    validation: Any,
    path: str | os.PathLike | None = None,
    *,
    arch: str = "small_cnn",
    iterations: int = 1000,
    eval_every: int = 25,
    patience: int | None = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the in-domain feature extractor on the training split, select it on the validation split.

    The extractor is the project's downstream classifier (:func:`medgan_aug.networks.build_classifier`)
    trained to predict the findings with :func:`medgan_aug.engines.train_classifier`; its penultimate
    embedding (``features``) is the feature space of every distance in this module. Model selection
    (early stopping with the best weights kept; Prechelt, "Early Stopping — But When?", 1998): every
    ``eval_every`` steps its mean AUC on ``validation`` is computed
    (:class:`~medgan_aug.handlers.ValidationSelection`); the weights with the highest validation AUC are
    kept, and training stops after ``patience`` evaluations without improvement. Trained to the end, the
    small CNN memorises the 691 images of the nih1000 sample (training AUC 1.00, held-out 0.58), so its
    features and scores fit the training images better than new real ones. The test split is never an
    input (ValueError if either dataset is it). The extractor is frozen afterwards and versioned
    (:data:`EXTRACTOR_VERSION` in its meta and default file name).

    The saved file's meta records what makes numbers comparable: version, flag, image size, arch, the
    selection (every evaluation's validation AUC, the chosen iteration), seed, and the SHA-256 of the
    training and validation data.

    Args:
        dataset: the real training split (:class:`medgan_aug.data.MedMNISTDataset`, ``split="train"``).
        validation: the real validation split (``split="val"``) of the same data.
        path: where to save it (:func:`medgan_aug.networks.save_classifier`, atomic); None: do not save.
        arch: ``"small_cnn"`` (default) or ``"resnet18"``.
        iterations: the most optimiser steps. eval_every: steps between validation evaluations.
        patience: evaluations without a higher validation AUC before stopping; None: train all steps.
        batch_size, lr, seed: training settings (deterministic for a seed on CPU).
        device: torch device. progress: show a progress bar.

    Returns:
        ``(model in eval mode, meta)``.
    """
    _check_selection_splits(dataset, validation)
    if arch not in CLASSIFIER_NAMES:
        raise ValueError(f"arch must be one of {CLASSIFIER_NAMES}, got {arch!r}")
    iterations = check_positive_int("iterations", iterations)
    eval_every = check_positive_int("eval_every", eval_every)
    if patience is not None:
        patience = check_positive_int("patience", patience)
    model = build_classifier(arch, dataset.num_channels, dataset.num_labels, dataset.size, seed=seed)
    if not np.isfinite(validation_auc(model, validation, device)):
        raise ValueError(
            f"validation data ({len(validation)} images) has no finding with both classes: no AUC to select on"
        )
    selection = ValidationSelection(
        model, lambda m: validation_auc(m, validation, device), every=eval_every, patience=patience
    )
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
        handlers=[selection],
    )
    best = selection.restore()
    meta = {
        "purpose": "medgan_aug feature extractor",
        "version": EXTRACTOR_VERSION,
        "flag": str(dataset.flag),
        "task": str(dataset.task),
        "label_names": [str(n) for n in dataset.label_names],
        "image_size": int(dataset.size),
        "arch": arch,
        "train_iterations": int(best),
        "max_iterations": iterations,
        "batch_size": int(batch_size),
        "lr": float(lr),
        "seed": int(seed),
        "train_size": int(len(dataset)),
        "data_sha256": data_fingerprint(dataset.images, dataset.labels),
        "val_size": int(len(validation)),
        "val_sha256": data_fingerprint(validation.images, validation.labels),
        "selection": {
            "split": str(getattr(validation, "split", "val")),
            "metric": "mean AUC",
            **selection.summary(),
        },
        "source": os.fspath(getattr(dataset, "source", "")),
        "final_loss": float(np.mean(stats["losses"][max(0, best - 20) : best])),
    }
    if path is not None:
        save_classifier(model, path, meta)
    return model.eval(), meta


def load_or_fit_extractor(
    path: str | os.PathLike,
    dataset: Any,
    validation: Any,
    **fit_kwargs: Any,
) -> tuple[nn.Module, dict[str, Any], bool]:
    """Load the extractor saved at ``path``, or fit it on ``dataset`` (selected on ``validation``) and save it.

    A loaded extractor must fit the data (channels, label width, image size), else ValueError. If it
    was trained or selected on different data than ``dataset`` / ``validation`` (SHA-256 in its meta), or
    is of another :data:`EXTRACTOR_VERSION` (an older file: trained to the last step, not selected), a
    warning says so: its numbers are comparable with other runs evaluated by the same file only.

    Args:
        path: extractor file (read if it exists, written otherwise).
        dataset: the real training split. validation: the real validation split (never test).
        **fit_kwargs: passed to :func:`fit_feature_extractor` when fitting (ignored when the file exists:
            the file is the extractor's identity; its meta records how it was trained).

    Returns:
        ``(model, meta, fitted_now)``.
    """
    _check_selection_splits(dataset, validation)
    path = Path(path)
    if not path.exists():
        model, meta = fit_feature_extractor(dataset, validation, path, **fit_kwargs)
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
    if meta.get("version") != EXTRACTOR_VERSION:
        warnings.warn(
            f"extractor {path} is version {meta.get('version', 'v1 (unversioned)')}, not {EXTRACTOR_VERSION} "
            "(older extractors were trained to the last step on train, not selected on val): its numbers "
            "are comparable only with runs evaluated by the same file",
            stacklevel=2,
        )
    for role, ds, key in (("trained", dataset, "data_sha256"), ("selected", validation, "val_sha256")):
        fp = data_fingerprint(ds.images, ds.labels)
        if meta.get(key) not in (None, fp):
            warnings.warn(
                f"extractor {path} was {role} on other data (sha256 {str(meta.get(key))[:12]}...) "
                f"than {getattr(ds, 'source', 'this dataset')} ({fp[:12]}...)",
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
