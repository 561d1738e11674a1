"""ValidationSelection: the best-scoring state is kept and restored; patience stops the run."""

from __future__ import annotations

import math

import pytest
import torch
from ignite.engine import Engine
from torch import nn

from medgan_aug.handlers.model_selection import ValidationSelection


def _counting_run(scores: list[float], every: int, patience: int | None, max_iterations: int):
    """An engine whose step sets the model's one weight to the iteration number; scores are scripted."""
    model = nn.Linear(1, 1, bias=False)
    calls: list[int] = []

    def step(engine: Engine, _batch: object) -> None:
        with torch.no_grad():
            model.weight.fill_(float(engine.state.iteration))

    def score(m: nn.Module) -> float:
        calls.append(int(m.weight.item()))
        return scores[len(calls) - 1]

    engine = Engine(step)
    selection = ValidationSelection(model, score, every=every, patience=patience)
    selection.attach(engine)
    engine.run(range(max_iterations), max_epochs=1)
    return model, selection, calls, engine


def test_best_state_is_kept_and_restored():
    model, sel, calls, _ = _counting_run(
        [0.2, 0.7, 0.5, 0.9, 0.6], every=10, patience=None, max_iterations=50
    )
    assert calls == [10, 20, 30, 40, 50] and sel.history == [
        (10, 0.2),
        (20, 0.7),
        (30, 0.5),
        (40, 0.9),
        (50, 0.6),
    ]
    assert model.weight.item() == 50.0
    assert sel.restore() == 40 and model.weight.item() == 40.0 and sel.best_score == 0.9
    assert sel.summary()["best_iteration"] == 40 and sel.stopped_early is False


def test_patience_stops_the_run_after_evaluations_without_improvement():
    # best at 20; 30, 40 and 50 are no better (a tie is no improvement): stopped at 50 of 100
    _, sel, calls, engine = _counting_run(
        [0.5, 0.8, 0.8, 0.1, 0.3] + [1.0] * 5, every=10, patience=3, max_iterations=100
    )
    assert calls == [10, 20, 30, 40, 50] and engine.state.iteration == 50
    assert sel.stopped_early is True and sel.best_iteration == 20


def test_last_step_is_evaluated_and_nan_never_wins():
    _, sel, calls, _ = _counting_run([math.nan, 0.4, 0.6], every=10, patience=None, max_iterations=25)
    assert calls == [10, 20, 25]  # the final step 25 is scored although it is not a multiple of 10
    assert sel.best_iteration == 25
    _, nan_only, _, _ = _counting_run([math.nan], every=10, patience=None, max_iterations=5)
    with pytest.raises(RuntimeError, match="no state to restore"):
        nan_only.restore()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        ValidationSelection(nn.Linear(1, 1), lambda m: 0.0, every=0)
    with pytest.raises(ValueError, match="patience must be an integer >= 1"):
        ValidationSelection(nn.Linear(1, 1), lambda m: 0.0, every=5, patience=0)
