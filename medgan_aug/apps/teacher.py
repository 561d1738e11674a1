"""The teacher: the ``real`` arm's classifier, whose soft scores label images that have no labels.

A teacher is a classifier trained on the labelled subset exactly as the study's ``real`` condition trains
(same architecture, fixed budget, seed and batch order; no batch transform, no early stopping, no selection
on val), so no arm that uses it sees more labels than ``real``. Its scores are probabilities (sigmoid per
finding for multi-label and binary tasks, softmax over classes for multi-class ones,
:func:`~medgan_aug.networks.classifiers.scores_from_logits`), never rounded: the downstream classifier
trains on them as soft targets, which both of its losses accept (BCE-with-logits takes targets in [0, 1];
cross-entropy takes class-probability targets).

Two uses (both with the same teacher in a study cell):

* ``real+pseudo@R``: pseudo-labelling (Lee, "Pseudo-Label", ICML 2013 workshop) of the training-split images
  outside the labelled subset (:func:`pseudo_labelled_pool`); val and test images never enter;
* teacher labels for generated images (:func:`teacher_labelled_synthetic`; study ``synthetic: {labels:
  teacher}``, ``medgan-aug classify --synthetic-labels teacher``), as in semi-supervised GAN augmentation
  where the generator saw unlabelled images.

In a study the teacher of a (fraction, seed, classifier, classifier seed) cell is written once to
``teachers/<key>.pt`` (:func:`ensure_teacher`, atomic) and reused by every condition of the cell, the
``real`` arm included: the ``real`` arm's classifier *is* the teacher.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.data.teacher_labelled import TeacherLabelledDataset
from medgan_aug.engines.classifier_trainer import train_classifier
from medgan_aug.networks.classifiers import build_classifier, scores_from_logits
from medgan_aug.networks.model_file import load_classifier, save_classifier

__all__ = [
    "SYNTHETIC_LABELS",
    "train_teacher",
    "ensure_teacher",
    "weights_fingerprint",
    "teacher_labeller",
    "pseudo_labelled_pool",
    "teacher_labelled_synthetic",
]


#: Where the labels of generated images come from: the generator's conditioning labels, or the teacher.
SYNTHETIC_LABELS = ("conditional", "teacher")


def train_teacher(
    train: MedMNISTDataset,
    classifier: str,
    *,
    iterations: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: str | torch.device = "cpu",
    progress: bool = False,
    distributed: bool | None = None,
    handlers: Any = (),
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the classifier of the ``real`` arm on ``train`` (the labelled subset): the teacher.

    Exactly what ``real`` does (:func:`~medgan_aug.networks.build_classifier` with ``seed``, then
    :func:`~medgan_aug.engines.train_classifier` with no batch transform), so one seed gives the same
    weights either way.

    Returns:
        The trained model (eval mode) and :func:`~medgan_aug.engines.train_classifier`'s history.
    """
    model = build_classifier(classifier, train.num_channels, train.num_labels, train.size, seed=seed)
    history = train_classifier(
        model, train, task=train.task, iterations=int(iterations), batch_size=int(batch_size), lr=float(lr),
        seed=int(seed), batch_transform=None, device=device, progress=progress, distributed=distributed,
        handlers=handlers,
    )  # fmt: skip
    return model, history


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-1 (12 hex digits) of a model's weights: two teachers with one fingerprint score alike."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def ensure_teacher(
    path: str | os.PathLike,
    train: MedMNISTDataset,
    classifier: str,
    *,
    identity: Mapping[str, Any],
    iterations: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> tuple[nn.Module, dict[str, Any]]:
    """Load the teacher file at ``path``, or train the teacher (:func:`train_teacher`) and write it there.

    The file is a classifier model file (:func:`~medgan_aug.networks.save_classifier`, written atomically) whose
    meta records ``identity`` (what the teacher was trained for), its ``training_seconds`` and its weights'
    ``fingerprint``. Callers that share a folder take a lock around this call (the study does), so a teacher
    is trained once.

    Args:
        path: the teacher file.
        train: the labelled subset.
        classifier: the network's name.
        identity: plain data naming the data, subset, classifier, seed and budget; a file recorded for
            another identity is refused.
        iterations, batch_size, lr, seed, device, progress: as in :func:`train_teacher`.

    Returns:
        The teacher (eval mode, on ``device``) and its file's meta.

    Raises:
        ValueError: the file at ``path`` was written for another identity.
    """
    path = Path(path)
    wanted = {key: identity[key] for key in sorted(identity)}
    if path.is_file():
        model, meta = load_classifier(path, map_location=device)
        if meta.get("identity") != _plain(wanted):
            raise ValueError(
                f"teacher file {path} was trained for {meta.get('identity')!r}, not {wanted!r}: remove it"
            )
        return model.to(device).eval(), meta
    model, history = train_teacher(
        train, classifier, iterations=iterations, batch_size=batch_size, lr=lr, seed=seed, device=device,
        progress=progress,
    )  # fmt: skip
    meta = {
        "identity": wanted,
        "task": train.task,
        "training_seconds": history["seconds"],
        "fingerprint": weights_fingerprint(model),
    }
    save_classifier(model, path, meta=meta)
    return model, _plain(meta)


def _plain(value: Any) -> Any:
    """``value`` as a model file's meta reads back (tuples as lists, numpy numbers as Python numbers)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def teacher_labeller(
    model: nn.Module, task: str, device: str | torch.device = "cpu"
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A labeller for :class:`~medgan_aug.data.teacher_labelled.TeacherLabelledDataset`: images in [0, 1] ->
    the teacher's probabilities (eval mode, no gradients), on the CPU."""

    @torch.no_grad()
    def label(images: torch.Tensor) -> torch.Tensor:
        model.eval()
        return scores_from_logits(model(images.to(device)), task).float().cpu()

    return label


def pseudo_labelled_pool(
    data: Mapping[str, Any],
    labelled: np.ndarray,
    labeller: Callable[[torch.Tensor], torch.Tensor],
) -> TeacherLabelledDataset:
    """The training-split images outside the labelled subset, with the teacher's soft scores (``real+pseudo@R``).

    Only the ``train`` split is read: val and test images never enter the pool.

    Args:
        data: :class:`~medgan_aug.data.MedMNISTDataset` keyword arguments of the data file (no split).
        labelled: the labelled subset's row indices in the training split.
        labeller: :func:`teacher_labeller`.

    Raises:
        ValueError: the labelled subset is the whole training split (fraction 1.0): there is no pool.
    """
    size = len(MedMNISTDataset(split="train", **data))
    pool = np.setdiff1d(np.arange(size), np.asarray(labelled, dtype=np.int64))
    if pool.size == 0:
        raise ValueError(
            f"real+pseudo@R needs training images outside the labelled subset, but the subset holds all {size} "
            "training images (fraction 1.0): use a fraction below 1 or drop the pseudo condition"
        )
    return TeacherLabelledDataset(
        MedMNISTDataset(split="train", indices=pool, **data), labeller, synthetic=False
    )


def teacher_labelled_synthetic(
    synthetic: SyntheticDataset, labeller: Callable[[torch.Tensor], torch.Tensor]
) -> TeacherLabelledDataset:
    """Generated images with the teacher's soft scores as labels, in place of any conditioning labels."""
    return TeacherLabelledDataset(synthetic, labeller, synthetic=True)
