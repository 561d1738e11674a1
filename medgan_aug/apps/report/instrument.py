"""The report's measuring instrument: the in-domain extractor, how good it is, and what it measures as a
classifier (conditional AUC beside label faithfulness).

The extractor is fitted on the real training split and selected on the validation split
(:func:`medgan_aug.apps.extractor_fit.fit_feature_extractor`); the test split is no input to that. Its AUC on
train, val and test is measured here (test is read for the reported number only) and written beside
every number that comes from it (:func:`instrument_note`), so a reader sees how far the instrument
itself can be trusted: a conditional AUC or a faithfulness shift cannot exceed what the classifier
detects on real held-out images.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.apps.extractor_fit import load_or_fit_extractor
from medgan_aug.metrics.extractor import (
    EXTRACTOR_VERSION,
    conditional_fidelity,
    default_extractor_name,
    weights_fingerprint,
)
from medgan_aug.metrics.faithfulness import label_faithfulness, real_label_separation

__all__ = [
    "FAITHFULNESS_SAMPLES",
    "split_images",
    "load_instrument",
    "split_aucs",
    "extractor_record",
    "instrument_note",
    "faithfulness_block",
]

#: Noise vectors of the label-faithfulness measure (2 x findings x this many generated images).
FAITHFULNESS_SAMPLES = 256


def split_images(ds: Any) -> torch.Tensor:
    """A MedMNIST split's images as a (N, C, H, W) float tensor in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(ds.images)).float().div_(255.0)
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()


def load_instrument(
    run_dir: Path,
    splits: dict[str, Any],
    extractor: str | os.PathLike | None,
    *,
    arch: str,
    iterations: int,
    device: str | torch.device,
    progress: bool,
) -> tuple[nn.Module, dict[str, Any], bool, Path]:
    """Load or fit the extractor on ``splits["train"]``, selected on ``splits["val"]`` (never test).

    Default file: ``<run parent>/extractors/<default_extractor_name>`` (versioned, shared by every run
    next to this one). Returns ``(model, meta, fitted_now, path)``.
    """
    train, val = splits["train"], splits["val"]
    if extractor is None:
        name = default_extractor_name(train, val, arch, iterations, 0)
        extractor = run_dir.resolve().parent / "extractors" / name
    path = Path(extractor)
    model, meta, fitted_now = load_or_fit_extractor(
        path, train, val, arch=arch, iterations=iterations, seed=0, device=device, progress=progress
    )
    return model, meta, fitted_now, path


def split_aucs(model: nn.Module, splits: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The extractor-classifier's AUC (:func:`conditional_fidelity` output) on each real split."""
    return {
        name: conditional_fidelity(
            model, split_images(ds), ds.targets, task=str(ds.task), label_names=ds.label_names
        )
        for name, ds in splits.items()
    }


def extractor_record(
    path: Path, model: nn.Module, meta: dict[str, Any], fitted_now: bool, aucs: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The ``extractor`` block of metrics.json: identity, selection, AUC per split (and per finding)."""
    selection = meta.get("selection")
    return {
        "file": os.fspath(path),
        "version": meta.get("version", "v1 (unversioned)"),
        "current_version": EXTRACTOR_VERSION,
        "weights_sha256": weights_fingerprint(model),
        "fitted_now": bool(fitted_now),
        "arch": meta.get("arch"),
        "train_iterations": meta.get("train_iterations"),
        "max_iterations": meta.get("max_iterations", meta.get("train_iterations")),
        "seed": meta.get("seed"),
        "data_sha256": meta.get("data_sha256"),
        "val_sha256": meta.get("val_sha256"),
        "selection": None
        if selection is None
        else {k: v for k, v in selection.items() if k != "history"}
        | {"evaluations": len(selection["history"])},
        "train_auc": aucs["train"]["auc"],
        "val_auc": aucs["val"]["auc"],
        "test_auc": aucs["test"]["auc"],
        "val_auc_per_label": aucs["val"]["auc_per_label"],
        "test_auc_per_label": aucs["test"]["auc_per_label"],
    }


def instrument_note(record: dict[str, Any]) -> dict[str, Any]:
    """What is written beside every number the extractor produces: its version and val/test AUC."""
    return {
        "extractor_version": record["version"],
        "val_auc": record["val_auc"],
        "test_auc": record["test_auc"],
    }


def faithfulness_block(
    generator: nn.Module,
    model: nn.Module,
    train: Any,
    subset_idx: np.ndarray,
    record: dict[str, Any],
    *,
    num_samples: int,
    seed: int,
    heldout: tuple[torch.Tensor, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Label faithfulness of a conditional generator, read by the extractor-classifier.

    Base label vectors: label vectors of the GAN's training images drawn with ``seed`` (each finding is
    switched in the contexts the generator was trained on). Each finding's entry carries the classifier's
    val and test AUC for that finding and, with ``heldout`` (real images in [0, 1], their label vectors),
    ``real_heldout_shift``: how far the same classifier's score separates real images with the finding
    from those without (:func:`medgan_aug.metrics.real_label_separation`), the shift a generator that drew
    the finding as real images show it would reach; ``real_heldout`` holds its means.
    """
    n = int(min(num_samples, FAITHFULNESS_SAMPLES))
    rng = np.random.default_rng(seed)
    base = train.targets[subset_idx[rng.choice(len(subset_idx), n, replace=len(subset_idx) < n)]]
    result = label_faithfulness(
        generator,
        model,
        num_samples=n,
        base_labels=base,
        seed=seed,
        task=str(train.task),
        label_names=train.label_names,
    )
    for name, entry in result["per_label"].items():
        entry["classifier_val_auc"] = record["val_auc_per_label"].get(name)
        entry["classifier_test_auc"] = record["test_auc_per_label"].get(name)
    if heldout is not None:
        real = real_label_separation(
            model, heldout[0], heldout[1], task=str(train.task), label_names=train.label_names
        )
        for name, entry in result["per_label"].items():
            entry["real_heldout_shift"] = real["per_label"].get(name, {}).get("shift")
        result["real_heldout"] = {k: real[k] for k in ("n", "mean_shift", "mean_auc", "skipped")}
    result["base_labels"] = "label vectors of the GAN's training images, drawn with the report's seed"
    result["classifier"] = "the extractor (selected on val)"
    result["instrument"] = instrument_note(record)
    return result
