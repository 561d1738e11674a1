"""``--tensorboard``: event files a tiny ``train`` and ``classify`` run write, read back with TensorBoard's own
reader (:mod:`medgan_aug.handlers.tensorboard`)."""

from __future__ import annotations

import math
import types

import pytest

from medgan_aug.apps.classify import ClassifierRunConfig, train_classifier_run
from medgan_aug.apps.train_config import GANConfig
from medgan_aug.apps.train_resume import settings_differences
from medgan_aug.cli import main
from medgan_aug.handlers.loss_log import LossCSV
from medgan_aug.handlers.tensorboard import generator_scalar_tags
from medgan_aug.transforms.adaptive import AdaptiveAugment

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="tensorboard is not installed (pip install 'medgan_aug[tensorboard]', or the dev extra)",
)


def _events(folder):
    accumulator = event_accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def _assert_scalars(events, tags, steps):
    assert set(tags) <= set(events.Tags()["scalars"]), events.Tags()["scalars"]
    for tag in tags:
        values = events.Scalars(tag)
        assert [v.step for v in values] == list(steps), tag
        assert all(math.isfinite(v.value) for v in values), tag


def test_train_writes_losses_learning_rates_ada_and_sample_grids(tmp_path):
    tb = tmp_path / "tb"
    argv = (
        "train --sample nih1000 --fraction 0.1 --iterations 6 --batch-size 16 --base-channels 8 --latent-dim 16 "
        f"--sample-every 3 --n-samples 4 --standing-stats-batches 1 --threads 1 --no-progress --out {tmp_path / 'run'} "
        f"--tensorboard {tb}"
    ).split()
    assert main(argv) == 0
    events = _events(tb)
    _assert_scalars(events, ("loss_d", "loss_g", "lr_g", "lr_d", "ada_p"), range(1, 7))
    assert events.Scalars("lr_g")[0].value == pytest.approx(2e-4)  # the constant schedule's rate
    assert [image.step for image in events.Images("samples")] == [3, 6]  # the saved grids, as saved
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == [
        "iter_00000003.png",
        "iter_00000006.png",
    ]


def test_classify_writes_loss_and_learning_rate(tmp_path):
    tb = tmp_path / "tb"
    config = ClassifierRunConfig(
        out=str(tmp_path / "cls"), sample="nih1000", fraction=0.1, iterations=5, batch_size=16, threads=1,
        progress=False, tensorboard=str(tb),
    )  # fmt: skip
    train_classifier_run(config)
    events = _events(tb)
    _assert_scalars(events, ("loss", "lr"), range(1, 6))
    assert [v.value for v in events.Scalars("lr")] == pytest.approx([1e-3] * 5)  # the constant rate
    assert events.Tags()["images"] == []


def test_ada_probability_is_plotted_only_where_augmentation_is_adaptive():
    adaptive = types.SimpleNamespace(augment=AdaptiveAugment.__new__(AdaptiveAugment))
    assert generator_scalar_tags(adaptive) == ("loss_d", "loss_g", "ada_p", "lr_g", "lr_d")
    assert generator_scalar_tags(types.SimpleNamespace(augment=None)) == ("loss_d", "loss_g", "lr_g", "lr_d")
    diffusion = types.SimpleNamespace(loss_columns=("iteration", "epoch", "loss", "lr"))
    assert generator_scalar_tags(diffusion) == ("loss", "lr")
    assert set(generator_scalar_tags(adaptive)) <= set(LossCSV.COLUMNS)  # the names of losses.csv


def test_tensorboard_is_no_part_of_a_runs_identity(tmp_path):
    """A run recorded without the setting resumes with it, and with another folder (only where it logs)."""
    saved = {"config": {k: v for k, v in GANConfig(out="r").to_dict().items() if k != "tensorboard"}}
    assert settings_differences(saved, GANConfig(out="r", tensorboard=str(tmp_path)).to_dict()) == []
    saved["config"]["tensorboard"] = "elsewhere"
    assert settings_differences(saved, GANConfig(out="r", tensorboard=str(tmp_path)).to_dict()) == []
