"""How one arm's classifier trains: for ``synthetic-pretrain[@N]+real``, generated images first, then ``real``.

Synthetic pretraining followed by real fine-tuning (RoentGen-v2, 2025, found it beat mixing generated images
into the real batches) is two calls of :func:`~medgan_aug.engines.train_classifier` on one model:

1. N steps on the generated images alone (a :class:`~medgan_aug.data.SyntheticDataset` with the generator's
   conditioning labels, or a :class:`~medgan_aug.data.teacher_labelled.TeacherLabelledDataset` with a
   teacher's soft scores), with the real phase's batch size, learning rate, optimiser (Adam) and seed;
2. exactly the ``real`` arm's training: the same real dataset, seed and step count, so the same real batches
   in the same order (the loader's shuffling is seeded by the run's seed alone), with the real phase's batch
   transform (None, or classical augmentation for ``+classical``).

The weights (BatchNorm running statistics included) carry over. Each call builds its own Adam, so the
optimiser state is reset between the phases: the usual practice when fine-tuning a pretrained model, and it
makes the real phase the ``real`` arm's training, step for step, from other initial weights. Every other
condition is the real phase alone, one :func:`~medgan_aug.engines.train_classifier` call as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import torch
from torch import nn

from medgan_aug.apps.study.conditions import Condition
from medgan_aug.engines.classifier_trainer import train_classifier

__all__ = ["train_arm"]


def train_arm(
    model: nn.Module,
    train: torch.utils.data.Dataset,
    condition: Condition,
    *,
    synthetic: Any,
    task: str,
    iterations: int,
    batch_size: int,
    lr: float,
    seed: int,
    batch_transform: Callable[[dict], dict] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    distributed: bool | None = None,
    handlers: Sequence[Any] = (),
    trainer: Callable[..., dict[str, Any]] = train_classifier,
) -> dict[str, Any]:
    """Train ``model`` in place as ``condition``'s arm: any synthetic pretraining, then ``iterations`` real steps.

    Args:
        model: the arm's classifier (:func:`~medgan_aug.networks.build_classifier`, seeded as ``real``'s).
        train: the labelled real subset, the dataset every arm draws its real batches from.
        condition: the arm (:func:`~medgan_aug.apps.study.conditions.parse_condition`).
        synthetic: the generated items (dict items with ``image`` and ``label``); the pretraining phase's
            dataset. Ignored by conditions without pretraining (their generated rows, if any, come through
            ``batch_transform``).
        task, iterations, batch_size, lr, seed, device, progress, distributed: as
            :func:`~medgan_aug.engines.train_classifier`; ``iterations`` is the real phase's step count.
        batch_transform: the real phase's batch transform
            (:func:`~medgan_aug.apps.study.conditions.condition_batch_transform`); the synthetic phase has none.
        handlers: attached to the real phase only (its losses are the run's loss log, as for ``real``).
        trainer: what trains each phase, :func:`~medgan_aug.engines.train_classifier` (callers pass the
            name they import, so a test that replaces theirs sees both phases).

    Returns:
        :func:`~medgan_aug.engines.train_classifier`'s history of the real phase, with ``seconds`` the
        wall time of both phases and ``synthetic_pretraining``: None without pretraining, else the
        synthetic phase's ``iterations``, ``examples_seen``, ``seconds`` and ``final_loss``.

    Raises:
        ValueError: a pretraining condition without ``synthetic``; anything
            :func:`~medgan_aug.engines.train_classifier` refuses.
    """
    if not isinstance(condition, Condition):
        raise TypeError(
            f"condition must be a Condition (parse_condition(name)), got {type(condition).__name__}"
        )
    steps = condition.pretrain_steps(iterations)
    if steps and synthetic is None:
        raise ValueError(f"condition {condition.name!r} pretrains on generated images: give synthetic=")
    common = {
        "task": task,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "device": device,
        "progress": progress,
        "distributed": distributed,
    }
    pretraining = None
    if steps:
        first = trainer(model, synthetic, iterations=steps, batch_transform=None, **common)
        pretraining = {
            "iterations": first["iterations"],
            "examples_seen": first["examples_seen"],
            "seconds": first["seconds"],
            "final_loss": first["losses"][-1] if first["losses"] else None,
        }
    history = trainer(
        model, train, iterations=iterations, batch_transform=batch_transform, handlers=handlers, **common
    )
    history["synthetic_pretraining"] = pretraining
    if pretraining is not None:
        history["seconds"] += pretraining["seconds"]
    return history
