"""An ignite handler that keeps an exponential moving average (EMA) of a network's weights."""

from __future__ import annotations

import copy
from typing import Any

import torch
from ignite.engine import Engine
from monai.engines.utils import IterationEvents
from torch import nn

__all__ = ["WeightEMA"]


class WeightEMA:
    """EMA of ``model``'s weights, updated after every optimiser step of the engine it is attached to.

    Averaging the generator's weights over training (Yazici et al., "The Unusual Effectiveness of
    Averaging in GAN Training", ICLR 2019) gives better samples than the last iterate. At iteration ``t``
    (1-based, ``engine.state.iteration``) every parameter moves as
    ``ema <- ema + (1 - d_t) * (live - ema)`` with the warm-up ``d_t = min(decay, (1 + t) / (10 + t))`` of
    TensorFlow's ``ExponentialMovingAverage(num_updates=t)``, so early averages are not dominated by the
    random initialisation; buffers (BatchNorm running statistics) are copied, not averaged.
    ``decay=0`` makes the average a copy of the live network.

    ignite's ``EMAHandler`` is not used: its momentum warm-up is linear and its update is
    ``mul_``/``add_``, so the averaged weights would differ from this ``lerp_`` update that runs so far used.

    Attach it to a MONAI engine (which fires ``IterationEvents.MODEL_COMPLETED`` right after its optimiser
    step, inside the iteration): it then runs before any ``ITERATION_COMPLETED`` handler, so checkpoints and
    sample grids see the updated average.

    Args:
        model: the live network.
        decay: the EMA decay in [0, 1).
        ema_model: the averaged copy; default: a deep copy of ``model`` in eval mode without gradients.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, ema_model: nn.Module | None = None) -> None:
        if not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        self.model, self.decay = model, float(decay)
        if ema_model is None:
            ema_model = copy.deepcopy(model).eval()
            for p in ema_model.parameters():
                p.requires_grad_(False)
        self.ema_model = ema_model

    def attach(self, engine: Engine, event: Any = IterationEvents.MODEL_COMPLETED) -> None:
        """Update after every optimiser step (``event``: e.g. ``Events.ITERATION_COMPLETED`` for a plain
        ignite ``Engine``, which does not fire MONAI's ``IterationEvents``)."""
        engine.add_event_handler(event, self)

    def __call__(self, engine: Engine) -> None:
        self.update(engine.state.iteration)

    def decay_at(self, iteration: int) -> float:
        """The decay used at ``iteration`` (1-based), warm-up included."""
        if self.decay <= 0:
            return 0.0
        return min(self.decay, (1.0 + iteration) / (10.0 + iteration))

    @torch.no_grad()
    def update(self, iteration: int) -> None:
        """Move the average one step towards ``model`` (the update of ``iteration``)."""
        decay = self.decay_at(iteration)
        # one multi-tensor kernel per list (as torch.optim's foreach path): the same per-element lerp/copy as
        # a loop over the tensors, bit for bit, without a Python-level call per tensor
        torch._foreach_lerp_(list(self.ema_model.parameters()), list(self.model.parameters()), 1.0 - decay)
        buffers = list(self.model.buffers())
        if buffers:
            torch._foreach_copy_(list(self.ema_model.buffers()), buffers)

    def state_dict(self) -> dict[str, Any]:
        """The averaged weights (what a checkpoint stores as ``generator_ema``)."""
        return self.ema_model.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema_model.load_state_dict(state)
