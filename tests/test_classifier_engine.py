"""Tests for the classifier's engine (medgan_aug.engines.classifier_engine) and train_classifier on it: the
losses it reports, where it stops, and a NaN loss at step k stopping the run before step k's optimiser step."""

from __future__ import annotations

import copy

import pytest
import torch
from monai.data import DataLoader
from monai.engines.utils import IterationEvents
from torch import nn

from medgan_aug.engines.classifier_engine import ClassifierTrainer
from medgan_aug.engines.classifier_trainer import train_classifier
from medgan_aug.handlers.loss_log import LossHistory
from medgan_aug.utils.errors import TrainingDivergenceError

ML = "multi-label, binary-class"


class _NaNAtCall(nn.Module):
    """A linear classifier on (1, 2, 2) images whose ``k``-th training forward pass returns NaN."""

    def __init__(self, k: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        self.k, self.calls = k, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = self.net(x)
        return out * float("nan") if self.calls == self.k else out


def _items(n: int = 16) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    images, labels = torch.rand(n, 1, 2, 2, generator=g), (torch.rand(n, 3, generator=g) < 0.5).float()
    return [{"image": images[i], "label": labels[i]} for i in range(n)]


def _loader(items: list[dict], batch: int = 4) -> DataLoader:
    return DataLoader(items, batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(0))


def test_nan_loss_at_step_k_raises_before_that_steps_update():
    items = _items()
    model = _NaNAtCall(k=3)
    with pytest.raises(
        TrainingDivergenceError, match="classifier training diverged at step 3: loss is nan"
    ) as err:
        train_classifier(model, items, task=ML, iterations=6, batch_size=4, seed=5)
    assert isinstance(err.value, FloatingPointError)  # old `except FloatingPointError` code still catches it
    assert "(2 of 6 done)" in str(err.value)
    two_steps = _NaNAtCall()
    train_classifier(two_steps, items, task=ML, iterations=2, batch_size=4, seed=5)
    initial = _NaNAtCall()
    for name, value in model.state_dict().items():
        assert torch.equal(value, two_steps.state_dict()[name])  # exactly steps 1 and 2 were taken
        assert not torch.equal(value, initial.state_dict()[name])


def test_the_engine_takes_no_optimiser_step_at_the_nan_step():
    model = _NaNAtCall(k=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    engine = ClassifierTrainer(model, _loader(_items()), optimizer, nn.BCEWithLogitsLoss(), iterations=10)
    steps = []
    engine.add_event_handler(IterationEvents.MODEL_COMPLETED, lambda e: steps.append(e.state.iteration))
    with pytest.raises(TrainingDivergenceError, match="step 4"):
        engine.run()
    assert steps == [1, 2, 3] and engine.state.iteration == 4
    assert {float(optimizer.state[p]["step"]) for p in model.parameters()} == {3.0}
    assert engine.examples_seen == 12


def test_losses_items_and_stop_mid_epoch_are_the_hand_computed_ones():
    items = _items()
    model = _NaNAtCall()
    start = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    double = lambda b: {"image": torch.cat([b["image"]] * 2), "label": torch.cat([b["label"]] * 2)}  # noqa: E731
    engine = ClassifierTrainer(
        model, _loader(items), optimizer, nn.BCEWithLogitsLoss(), iterations=6, batch_transform=double
    )
    log = LossHistory(("loss", "items"))
    log.attach(engine)
    engine.run()
    # 16 items in batches of 4: 4 steps an epoch, so 6 steps end in the middle of epoch 2
    assert (engine.state.iteration, engine.state.epoch) == (6, 2)
    assert log.history["items"] == [8.0] * 6 and engine.examples_seen == 48
    assert isinstance(engine.state.output["loss"], float)
    # step 1 by hand: the first batch of the same shuffled order, the initial weights, then one SGD step
    first = next(iter(_loader(items)))
    x, y = torch.cat([first["image"]] * 2), torch.cat([first["label"]] * 2)
    loss = nn.BCEWithLogitsLoss()(start(x), y)
    assert log.history["loss"][0] == loss.item()
    loss.backward()
    with torch.no_grad():
        expected_weight = start.net[1].weight - 0.5 * start.net[1].weight.grad
    replay = _NaNAtCall()
    replay_engine = ClassifierTrainer(
        replay,
        _loader(items),
        torch.optim.SGD(replay.parameters(), lr=0.5),
        nn.BCEWithLogitsLoss(),
        1,
        "cpu",
        double,
    )
    replay_engine.run()
    assert torch.equal(replay.net[1].weight, expected_weight)


def test_train_classifier_reports_what_the_engine_did():
    hist = train_classifier(_NaNAtCall(), _items(), task=ML, iterations=5, batch_size=4, seed=0)
    assert hist["iterations"] == 5 and hist["examples_seen"] == 20 and hist["world_size"] == 1
    assert len(hist["losses"]) == 5 and all(isinstance(v, float) for v in hist["losses"])
    assert (
        hist["losses"]
        == train_classifier(_NaNAtCall(), _items(), task=ML, iterations=5, batch_size=4)["losses"]
    )
