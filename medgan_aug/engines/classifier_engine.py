"""The classifier's training engine: MONAI's ``SupervisedTrainer`` with the project's batch contract, the
shared finite-loss check and data-parallel gradient averaging. :func:`medgan_aug.engines.train_classifier`
builds and runs it; it can also be built directly to attach more MONAI/ignite handlers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys as Keys
from torch import nn

from medgan_aug.handlers.finite_loss import check_finite_loss

__all__ = ["ClassifierTrainer", "ClassifierBatch", "check_classifier_batch"]


def check_classifier_batch(batch: Any, model: nn.Module, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)`` of a collated batch dict as float tensors, or a ValueError naming ``where``.

    Args:
        batch: ``{"image": (B, C, H, W), "label": (B, L), ...}``.
        model: the classifier; its ``arch`` (if any) gives the expected channels and label width.
        where: how the batch is named in errors (e.g. ``"batch returned by batch_transform"``).
    """
    if not isinstance(batch, Mapping) or "image" not in batch or "label" not in batch:
        keys = list(batch.keys()) if isinstance(batch, Mapping) else type(batch).__name__
        raise ValueError(f"{where} must be a dict with 'image' and 'label', got {keys}")
    images, labels = batch["image"], batch["label"]
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(
            f"{where}['image'] must be a (B, C, H, W) tensor, got "
            f"{getattr(images, 'shape', type(images).__name__)}"
        )
    if not isinstance(labels, torch.Tensor) or labels.ndim != 2 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{where}['label'] must be a (B, L) tensor matching the image batch "
            f"{tuple(images.shape)}, got {getattr(labels, 'shape', type(labels).__name__)}"
        )
    arch = getattr(model, "arch", None)
    if arch is not None:
        if images.shape[1] != arch["in_channels"]:
            raise ValueError(
                f"{where}['image'] has {images.shape[1]} channels, the model expects "
                f"in_channels={arch['in_channels']}"
            )
        if labels.shape[1] != arch["num_outputs"]:
            raise ValueError(
                f"{where}['label'] has width {labels.shape[1]}, the model has "
                f"num_outputs={arch['num_outputs']}"
            )
    return images.as_subclass(torch.Tensor).float(), labels.as_subclass(torch.Tensor).float()


class ClassifierBatch:
    """The trainer's ``prepare_batch``: ``batch_transform`` on the collated batch, checks, then the device.

    Args:
        model: the classifier (for the channel and label-width checks).
        batch_transform: callable on the batch dict returning a batch dict (e.g. ``MixSyntheticd``), or None.
    """

    def __init__(self, model: nn.Module, batch_transform: Callable[[dict], dict] | None = None) -> None:
        self.model, self.batch_transform = model, batch_transform

    def __call__(
        self, batchdata: dict, device: torch.device, non_blocking: bool = False, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        where = "batch"
        if self.batch_transform is not None:
            batchdata, where = self.batch_transform(batchdata), "batch returned by batch_transform"
        images, labels = check_classifier_batch(batchdata, self.model, where)
        return images.to(device, non_blocking=non_blocking), labels.to(device, non_blocking=non_blocking)


class ClassifierTrainer(SupervisedTrainer):
    """Train a classifier for a fixed number of optimiser steps, as MONAI's ``SupervisedTrainer``.

    Why ``SupervisedTrainer`` and not an own ``Engine``: its step (prepare, ``zero_grad``, forward, loss,
    backward, step) is the order of the earlier bare loop, so the weights stay bit-identical, and its
    ``IterationEvents`` give the hooks this needs: the finite-loss check on ``LOSS_COMPLETED`` (before
    backward and step) and gradient averaging on ``BACKWARD_COMPLETED``.

    Per step, after the optimiser step (``IterationEvents.MODEL_COMPLETED``), ``engine.state.output`` holds
    ``"loss"`` as a Python float (the global-batch mean under data parallelism) and ``"items"`` (images in
    the global batch after ``batch_transform``); ``examples_seen`` counts them over the run. A NaN or
    infinite loss raises :class:`~medgan_aug.utils.errors.TrainingDivergenceError` naming the step (1-based:
    step k means k - 1 optimiser steps were taken and step k's was not).

    Args:
        network: the classifier (already on ``device``, in train mode, its optimiser built).
        loader: the training DataLoader; one epoch is one pass over it.
        optimizer: the optimiser of ``network``.
        loss_function: the loss, e.g. :func:`medgan_aug.networks.loss_for_task`.
        iterations: optimiser steps to take (the engine stops there, mid-epoch if need be).
        device: torch device.
        batch_transform: applied to every collated batch before the step (:class:`ClassifierBatch`).
        shard: a :class:`medgan_aug.engines.Shard` for data-parallel training, or None.
        train_handlers: MONAI/ignite handlers (objects with ``attach``), attached at construction.
    """

    progress_label = "classifier"
    progress_keys = ("loss",)

    def __init__(
        self,
        network: nn.Module,
        loader: torch.utils.data.DataLoader,
        optimizer: torch.optim.Optimizer,
        loss_function: Callable,
        iterations: int,
        device: str | torch.device = "cpu",
        batch_transform: Callable[[dict], dict] | None = None,
        shard: Any = None,
        train_handlers: Sequence | None = None,
    ) -> None:
        epoch_length = len(loader)
        super().__init__(
            device=device,
            max_epochs=math.ceil(iterations / epoch_length),
            train_data_loader=loader,
            network=network,
            optimizer=optimizer,
            loss_function=loss_function,
            epoch_length=epoch_length,
            prepare_batch=ClassifierBatch(network, batch_transform),
            train_handlers=train_handlers,
            decollate=False,
            optim_set_to_none=True,
        )
        self.iterations, self.shard = int(iterations), shard
        self.examples_seen = 0
        self._step_values: tuple[float, int] = (math.nan, 0)
        self.add_event_handler(IterationEvents.LOSS_COMPLETED, self._reduce_and_check)
        if shard is not None:
            self.add_event_handler(IterationEvents.BACKWARD_COMPLETED, self._average_gradients)
        self.add_event_handler(IterationEvents.MODEL_COMPLETED, self._report)
        self.add_event_handler(Events.ITERATION_COMPLETED, self._stop_when_done)

    def _reduce_and_check(self) -> None:
        """The step's loss and batch size (over the ranks: one ``all_reduce``); stop on a non-finite loss."""
        out = self.state.output
        loss, items = float(out[Keys.LOSS].detach()), int(out[Keys.IMAGE].shape[0])
        if self.shard is not None:  # global-batch mean loss and size: every rank sees the same numbers
            loss_sum, total = self.shard.sum([loss, float(items)])
            loss, items = loss_sum / self.shard.world_size, int(total)
        step = self.state.iteration
        check_finite_loss(
            loss,
            "loss",
            step,
            label="classifier training",
            advice=f"Its optimiser step was not taken ({step - 1} of {self.iterations} done). "
            "Try a lower learning rate.",
        )
        self._step_values = (loss, items)

    def _average_gradients(self) -> None:
        self.shard.average_gradients(self.network)

    def _report(self) -> None:
        loss, items = self._step_values
        self.state.output[Keys.LOSS], self.state.output["items"] = loss, items
        self.examples_seen += items

    def _stop_when_done(self) -> None:
        if self.state.iteration >= self.iterations:
            self.terminate()
