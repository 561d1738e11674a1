"""Tests for the progress bar handler (medgan_aug.handlers.progress) on both engines: label, total, start
and the latest losses come from the engine, and the bar is closed when the run ends."""

from __future__ import annotations

import io

import torch
from monai.data import DataLoader
from torch import nn

from medgan_aug.apps.train import GANConfig, build_gan_trainer, load_gan_subset
from medgan_aug.engines.classifier_engine import ClassifierTrainer
from medgan_aug.handlers.progress import IterationProgress


def _lines(out: io.StringIO) -> list[str]:
    """The bar's successive states (tqdm redraws with carriage returns)."""
    return [line for line in out.getvalue().replace("\r", "\n").splitlines() if line]


def test_classifier_bar_shows_label_total_and_last_loss():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    items = [{"image": torch.rand(1, 2, 2), "label": torch.ones(2)} for _ in range(8)]
    loader = DataLoader(items, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    engine = ClassifierTrainer(
        model, loader, torch.optim.SGD(model.parameters(), lr=0.1), nn.BCEWithLogitsLoss(), 5
    )
    out = io.StringIO()
    bar = IterationProgress(file=out)
    bar.attach(engine)
    engine.run()
    lines = _lines(out)
    assert bar.bar is None  # closed at the end
    assert lines[0].startswith("classifier:") and "0/5" in lines[0]
    assert "5/5" in lines[-1]
    assert (
        f"epoch=3, loss={engine.state.output['loss']:.4g}" in lines[-1]
    )  # 2 steps an epoch: 5 is in epoch 3


def test_gan_bar_starts_at_the_resumed_iteration(chest28_path, tmp_path):
    def trainer(iterations: int):
        config = GANConfig(
            path=str(chest28_path), fraction=0.1, iterations=iterations, batch_size=16, base_channels=16,
            out=str(tmp_path), progress=False, seed=1,
        )  # fmt: skip
        return build_gan_trainer(config, load_gan_subset(config))

    first = trainer(2)
    first.run()
    resumed = trainer(4)
    resumed.load_training_state(first.training_state())
    out = io.StringIO()
    IterationProgress(file=out).attach(resumed)
    resumed.run()
    lines = _lines(out)
    assert lines[0].startswith("GAN:") and "2/4" in lines[0]  # opened at the checkpoint's iteration
    final = resumed.state.output
    assert "4/4" in lines[-1]
    assert f"loss_d={final['loss_d']:.4g}, loss_g={final['loss_g']:.4g}" in lines[-1]
