"""Tests for the weight-EMA handler (medgan_aug.handlers.ema): exact averages over the first steps with the
warm-up, buffers copied, and the update running inside a MONAI engine's iteration."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events
from monai.engines import SupervisedTrainer
from torch import nn

from medgan_aug.handlers.ema import WeightEMA


def _run(decay: float, steps: int = 3) -> list[tuple[float, float, float]]:
    """Live BatchNorm weight t, bias -t, running mean 10 t at iteration t; the EMA after each iteration."""
    live = nn.BatchNorm1d(1)
    nn.init.zeros_(live.weight)
    ema = WeightEMA(live, decay)

    @torch.no_grad()
    def step(engine: Engine, batch: int) -> None:
        t = engine.state.iteration
        live.weight.fill_(t)
        live.bias.fill_(-t)
        live.running_mean.fill_(10.0 * t)

    engine = Engine(step)
    ema.attach(engine, Events.ITERATION_COMPLETED)
    seen: list[tuple[float, float, float]] = []
    m = ema.ema_model
    engine.add_event_handler(
        Events.ITERATION_COMPLETED,
        lambda e: seen.append((m.weight.item(), m.bias.item(), m.running_mean.item())),
    )
    engine.run(range(steps), max_epochs=1)
    return seen


def test_three_steps_give_the_known_averages_with_warm_up():
    # decay 0.25: d_1 = min(0.25, 2/11) = 2/11 (warm-up), d_2 = min(0.25, 3/12) = 0.25, d_3 = 0.25 (the cap)
    # ema_1 = 9/11 * 1; ema_2 = 0.25 ema_1 + 0.75 * 2 = 18.75/11; ema_3 = 0.25 ema_2 + 0.75 * 3 = 29.4375/11
    seen = _run(0.25)
    weights = [w for w, _, _ in seen]
    assert weights == pytest.approx([9 / 11, 18.75 / 11, 29.4375 / 11], rel=1e-6)
    assert [b for _, b, _ in seen] == pytest.approx([-9 / 11, -18.75 / 11, -29.4375 / 11], rel=1e-6)
    assert [r for _, _, r in seen] == [10.0, 20.0, 30.0]  # buffers are copied, not averaged


def test_warm_up_below_the_decay_and_decay_zero():
    ema = WeightEMA(nn.Linear(1, 1), 0.999)
    assert ema.decay_at(1) == pytest.approx(2 / 11)
    assert ema.decay_at(1000) == pytest.approx(1001 / 1010)  # warm-up still below 0.999 at t=1000
    assert ema.decay_at(10**6) == 0.999
    assert [w for w, _, _ in _run(0.0)] == [1.0, 2.0, 3.0]  # decay 0: the copy is the live network
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        WeightEMA(nn.Linear(1, 1), 1.0)


def test_ema_update_warm_up_and_off():
    def step(iteration: int, decay: float, ema_value: float = 0.0) -> tuple[float, float]:
        live, ema = torch.nn.BatchNorm1d(1), torch.nn.BatchNorm1d(1)
        torch.nn.init.constant_(live.weight, 1.0)
        torch.nn.init.constant_(ema.weight, ema_value)
        live.running_mean.fill_(5.0)
        WeightEMA(live, decay, ema_model=ema).update(iteration)
        return ema.weight.item(), ema.running_mean.item()

    assert step(0, 0.999) == (pytest.approx(0.9), 5.0)  # decay min(0.999, 1/10) = 0.1: mostly the live G
    assert step(1000, 0.999)[0] == pytest.approx(1 - 1001 / 1010)
    assert step(10**6, 0.999)[0] == pytest.approx(0.001)  # then the configured decay
    assert step(7, 0.0, ema_value=0.3) == (pytest.approx(1.0), 5.0)  # EMA off: the copy is the live G


def test_on_a_monai_engine_the_average_is_updated_before_iteration_completed_handlers():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    data = [{"image": torch.rand(4, 2), "label": torch.rand(4, 1)} for _ in range(3)]
    trainer = SupervisedTrainer(
        "cpu", 1, data, model, torch.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss(), decollate=False
    )
    ema = WeightEMA(model, 0.0)
    same = []  # registered before the EMA handler, at ITERATION_COMPLETED: it must already see the update
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: same.append(torch.equal(ema.ema_model.weight, model.weight))
    )
    ema.attach(trainer)  # IterationEvents.MODEL_COMPLETED, fired right after the optimiser step
    trainer.run()
    assert same == [True, True, True]
    state = ema.state_dict()
    other = WeightEMA(nn.Linear(2, 1))
    other.load_state_dict(state)
    assert torch.equal(other.ema_model.weight, model.weight)
