"""The one finite-loss check of both training engines (GAN and classifier).

Each engine calls :func:`check_finite_loss` on a loss's value (a Python float, the mean over the ranks
under data parallelism, so every rank stops at the same step) after computing it and *before* the
backward pass and optimiser step that would use it: a NaN or infinite loss stops training with
:class:`~medgan_aug.utils.errors.TrainingDivergenceError` (the GAN raises its subclass
:class:`~medgan_aug.utils.errors.GANDivergenceError`), naming the step, and no weights are changed by it.

ignite's ``TerminateOnNan`` does not fit: it runs at ``ITERATION_COMPLETED``, after the optimiser step
(NaN weights would already be in the model and in a checkpoint), and ends the run without an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from medgan_aug.utils.errors import TrainingDivergenceError

__all__ = ["check_finite_loss"]


def check_finite_loss(
    value: float,
    name: str,
    step: int,
    *,
    label: str = "training",
    step_name: str = "step",
    context: Mapping[str, float] | None = None,
    advice: str = "",
    error: type[TrainingDivergenceError] = TrainingDivergenceError,
) -> float:
    """Return ``value`` if it is finite, else raise ``error`` naming the loss and the step.

    Args:
        value: the loss as a Python float (one device sync, no extra tensor operations).
        name: the loss's name in the message (e.g. ``"loss"``, ``"loss_d"``).
        step: the engine's iteration (1-based: the step whose optimiser update is refused).
        label: what diverged, e.g. ``"GAN training"``, ``"classifier training"``.
        step_name: what a step is called, e.g. ``"iteration"`` or ``"step"``.
        context: other values worth showing (e.g. the other loss of the same iteration).
        advice: a sentence appended to the message (what was kept, what to try).
        error: the exception class, :class:`TrainingDivergenceError` or a subclass.

    Returns:
        ``value`` unchanged.

    Raises:
        TrainingDivergenceError: (or ``error``) ``value`` is NaN or infinite.
    """
    if math.isfinite(value):
        return value
    extra = ", ".join(f"{k}={v:.4g}" for k, v in (context or {}).items())
    message = f"{label} diverged at {step_name} {step}: {name} is {value}" + (f" ({extra})" if extra else "")
    raise error(message + "." + (f" {advice}" if advice else ""))
