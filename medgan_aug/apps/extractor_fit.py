"""Fitting the in-domain feature extractor: train the project's classifier on the real training split, select
it on the validation split (:class:`~medgan_aug.handlers.ValidationSelection`), save it versioned, and reuse a
saved one. Training lives here, in ``apps``; the extractor's features, fingerprints and file name are
:mod:`medgan_aug.metrics.extractor`'s.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.engines.classifier_trainer import train_classifier
from medgan_aug.handlers.model_selection import ValidationSelection
from medgan_aug.metrics.extractor import EXTRACTOR_VERSION, data_fingerprint, validation_auc
from medgan_aug.networks.classifiers import CLASSIFIER_NAMES, build_classifier
from medgan_aug.networks.model_file import load_classifier, save_classifier
from medgan_aug.utils.validation import check_integer

__all__ = ["fit_feature_extractor", "load_or_fit_extractor"]


def _check_dataset(dataset: Any, role: str = "training") -> None:
    """A MedMNISTDataset-like split with at least two images (TypeError / ValueError naming ``role``)."""
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


def _check_fit_settings(
    arch: str, iterations: Any, eval_every: Any, patience: Any
) -> tuple[int, int, int | None]:
    """The architecture name and the step counts of :func:`fit_feature_extractor`, with one-line errors."""
    if arch not in CLASSIFIER_NAMES:
        raise ValueError(f"arch must be one of {CLASSIFIER_NAMES}, got {arch!r}")
    iterations = check_integer("iterations", iterations)
    eval_every = check_integer("eval_every", eval_every)
    if patience is not None:
        patience = check_integer("patience", patience)
    return iterations, eval_every, patience


def _validation_selection(
    model: nn.Module, validation: Any, device: str | torch.device, *, eval_every: int, patience: int | None
) -> ValidationSelection:
    """Model selection on the validation split's mean AUC (ValueError if no finding there has both
    classes)."""
    if not np.isfinite(validation_auc(model, validation, device)):
        raise ValueError(
            f"validation data ({len(validation)} images) has no finding with both classes: no AUC to select on"
        )
    return ValidationSelection(
        model, lambda m: validation_auc(m, validation, device), every=eval_every, patience=patience
    )


def _extractor_meta(
    dataset: Any,
    validation: Any,
    selection: ValidationSelection,
    stats: dict[str, Any],
    best: int,
    *,
    arch: str,
    iterations: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> dict[str, Any]:
    """What a fitted extractor's file records: version, data and its SHA-256, arch, training settings and the
    validation selection (every evaluation's AUC, the chosen iteration)."""
    return {
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
    embedding (``features``) is the feature space of the distances in :mod:`medgan_aug.metrics.generative`.
    Model selection (early stopping with the best weights kept; Prechelt, "Early Stopping — But When?",
    1998): every ``eval_every`` steps its mean AUC on ``validation`` is computed
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
    iterations, eval_every, patience = _check_fit_settings(arch, iterations, eval_every, patience)
    model = build_classifier(arch, dataset.num_channels, dataset.num_labels, dataset.size, seed=seed)
    selection = _validation_selection(model, validation, device, eval_every=eval_every, patience=patience)
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
    meta = _extractor_meta(
        dataset,
        validation,
        selection,
        stats,
        best,
        arch=arch,
        iterations=iterations,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
    )
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
