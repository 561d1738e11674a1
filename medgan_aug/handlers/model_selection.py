"""Model selection on a validation score during training: keep the best state, stop when it stops improving.

Early stopping with the best-so-far weights kept (Prechelt, "Early Stopping — But When?", in *Neural
Networks: Tricks of the Trade*, Springer 1998): every ``every`` optimiser steps a score of the model on
held-out data is computed; the state with the highest score is copied aside, and after ``patience``
evaluations without a strictly higher score the engine is terminated. The caller restores the kept state
(:meth:`ValidationSelection.restore`).

ignite's ``EarlyStopping`` and ``Checkpoint(score_function=...)`` come close but count epochs and write
files; here the unit is optimiser steps (the classifier engine stops mid-epoch) and the best state stays
in memory, so selection changes nothing on disk and nothing in the training trajectory: the score
function only reads the model (in eval mode), so the weights at step ``best_iteration`` are exactly those
of a run stopped there.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from ignite.engine import Engine, Events
from torch import nn

from medgan_aug.utils.validation import check_integer

__all__ = ["ValidationSelection"]


class ValidationSelection:
    """Evaluate ``score_fn(model)`` every ``every`` iterations; keep the best state; optional early stop.

    Args:
        model: the network being trained (its ``state_dict`` is what is kept).
        score_fn: higher is better; called with the model, must not change its weights. A NaN score
            never counts as an improvement.
        every: evaluate after every ``every`` optimiser steps (and once more at the end of the run if
            the last step was not an evaluation step).
        patience: stop after this many evaluations in a row without a strictly higher score; None: never.

    Attributes:
        history: ``[(iteration, score), ...]`` of every evaluation.
        best_score, best_iteration: the selected evaluation (``-inf`` and 0 before any).
        stopped_early: whether ``patience`` ended the run.
    """

    def __init__(
        self,
        model: nn.Module,
        score_fn: Callable[[nn.Module], float],
        every: int,
        patience: int | None = None,
    ) -> None:
        for name, value in (("every", every), ("patience", patience)):
            if value is None and name == "patience":
                continue
            check_integer(name, value, 1)
        self.model, self.score_fn, self.every, self.patience = model, score_fn, every, patience
        self.history: list[tuple[int, float]] = []
        self.best_score, self.best_iteration = -math.inf, 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped_early = False
        self._since_best = 0

    def attach(self, engine: Engine) -> None:
        """Evaluate on ``ITERATION_COMPLETED(every=every)`` and at ``COMPLETED``."""
        engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.every), self._evaluate)
        engine.add_event_handler(Events.COMPLETED, self._final)

    def _final(self, engine: Engine) -> None:
        if not self.history or self.history[-1][0] != engine.state.iteration:
            self._evaluate(engine)

    def _evaluate(self, engine: Engine) -> None:
        iteration = int(engine.state.iteration)
        score = float(self.score_fn(self.model))
        self.history.append((iteration, score))
        if score > self.best_score:  # False for NaN
            self.best_score, self.best_iteration, self._since_best = score, iteration, 0
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            return
        self._since_best += 1
        if self.patience is not None and self._since_best >= self.patience and not self.stopped_early:
            self.stopped_early = True
            engine.terminate()

    def restore(self) -> int:
        """Load the best state into the model; returns its iteration. RuntimeError if none was scored."""
        if self.best_state is None:
            raise RuntimeError("no evaluation gave a finite score: there is no state to restore")
        self.model.load_state_dict(self.best_state)
        return self.best_iteration

    def summary(self) -> dict[str, Any]:
        """Plain-data record of the selection (for a model file's meta)."""
        return {
            "every": self.every,
            "patience": self.patience,
            "best_iteration": self.best_iteration,
            "best_score": self.best_score,
            "stopped_early": self.stopped_early,
            "history": [[it, s] for it, s in self.history],
        }
