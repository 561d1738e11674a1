"""Synthetic pretraining (``synthetic-pretrain[@N]+real``): generated images first, then exactly the ``real`` arm.

Short runs on the packaged NIH1000 sample (691 training images, 233 test, 14 findings) with untrained or briefly
trained tiny generators.
"""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import torch

from medgan_aug.apps.classify import ClassifierRunConfig, train_classifier_run
from medgan_aug.apps.study.conditions import condition_batch_transform
from medgan_aug.apps.study.config import load_study_config, parse_condition
from medgan_aug.apps.study.pretraining import train_arm
from medgan_aug.apps.study.sections import check_conditions
from medgan_aug.apps.study.study import run_study
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.networks.classifiers import build_classifier
from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.networks.model_file import load_classifier, save_generator
from medgan_aug.transforms.classical import BatchClassicalAugmentationd

ITERATIONS, BATCH = 5, 16


def test_parse_condition_accepts_and_refuses_synthetic_pretraining():
    default = parse_condition("synthetic-pretrain+real")
    assert default.synthetic_pretrain and default.needs_gan and not default.classical
    assert default.synthetic_ratio == 0 and default.pretrain_iterations is None
    assert default.pretrain_steps(300) == 300  # default: as many synthetic steps as real ones
    counted = parse_condition("synthetic-pretrain@200+real+classical")
    assert counted.classical and counted.pretrain_iterations == 200 and counted.pretrain_steps(300) == 200
    assert parse_condition("real+synthetic@0.5").pretrain_steps(300) == 0
    assert parse_condition("real").pretrain_steps(300) == 0
    for bad in (
        "synthetic-pretrain",
        "synthetic-pretrain+",
        "synthetic-pretrain@0+real",
        "synthetic-pretrain@-3+real",
        "synthetic-pretrain@1.5+real",
        "synthetic-pretrain@+real",
        "synthetic-pretrain@²+real",
        "synthetic-pretrain+real+mixup",
        "synthetic-pretrain+real+synthetic@0.5",
        "synthetic-pretrain+classical+real",
        "synthetic-pretrain+real+classical+classical",
        "synthetic-pretrainx+real",
        "real+synthetic-pretrain",
    ):
        with pytest.raises(
            ValueError, match=f"unknown condition '{re.escape(bad)}'.*synthetic-pretrain@N\\+real"
        ):
            parse_condition(bad)
    with pytest.raises(ValueError, match="'synthetic-pretrain@050\\+real' is the same condition as"):
        check_conditions(["synthetic-pretrain@50+real", "synthetic-pretrain@050+real"])


def test_the_real_phase_transform_never_mixes_generated_rows():
    source = object()  # never touched: pretraining conditions mix nothing into the real batches
    assert condition_batch_transform(parse_condition("synthetic-pretrain+real"), source) is None
    classical = condition_batch_transform(parse_condition("synthetic-pretrain@3+real+classical"), source)
    assert isinstance(classical, BatchClassicalAugmentationd)
    with pytest.raises(ValueError, match="mixes in generated images: give synthetic="):
        condition_batch_transform(parse_condition("synthetic-pretrain+real"), None)
    model = build_classifier("small_cnn", 1, 14, 28, seed=0)
    with pytest.raises(ValueError, match="pretrains on generated images: give synthetic="):
        train_arm(
            model, [], parse_condition("synthetic-pretrain+real"), synthetic=None, task="multi-label, binary-class",
            iterations=2, batch_size=4, lr=1e-3, seed=0,
        )  # fmt: skip


@pytest.fixture(scope="module")
def arms(chest28_path):
    """The real subset, generated images, and what the model saw per step in ``real`` and two pretraining arms."""
    train = MedMNISTDataset(path=chest28_path, indices=np.arange(100))
    torch.manual_seed(0)
    generator = DCGANGenerator(28, num_labels=14, base_channels=8)
    synthetic = SyntheticDataset(generator, 48, label_pool=train.targets, seed=0).materialize()
    runs = {}
    for name in ("real", "synthetic-pretrain@3+real", "synthetic-pretrain+real", "synthetic-pretrain+real#2"):
        condition = parse_condition(name.split("#")[0])
        model = build_classifier("small_cnn", 1, 14, 28, seed=7)
        seen: list[torch.Tensor] = []
        hook = model.register_forward_hook(
            lambda module, args, output, seen=seen: seen.append(args[0].clone())
        )
        history = train_arm(
            model, train, condition, synthetic=synthetic, task=train.task, iterations=ITERATIONS,
            batch_size=BATCH, lr=1e-3, seed=7,
        )  # fmt: skip
        hook.remove()
        runs[name] = (model, seen, history)
    return train, synthetic, runs


def _rows(images: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in images.float()}


def test_the_real_phase_is_exactly_the_real_arm(arms):
    _, _, runs = arms
    _, real_seen, real_history = runs["real"]
    assert len(real_seen) == ITERATIONS and real_history["synthetic_pretraining"] is None
    for name, steps in (("synthetic-pretrain@3+real", 3), ("synthetic-pretrain+real", ITERATIONS)):
        _, seen, history = runs[name]
        assert len(seen) == steps + ITERATIONS  # one forward per step: N synthetic, then the real budget
        for mine, theirs in zip(seen[steps:], real_seen):  # the same real batches, in the same order
            assert torch.equal(mine, theirs)
        assert history["iterations"] == ITERATIONS and history["examples_seen"] == ITERATIONS * BATCH
        pretraining = history["synthetic_pretraining"]
        assert pretraining["iterations"] == steps and pretraining["examples_seen"] == steps * BATCH
        assert history["seconds"] >= pretraining["seconds"] > 0


def test_the_synthetic_phase_sees_only_generated_images(arms):
    train, synthetic, runs = arms
    generated = _rows(synthetic.get_batch(np.arange(len(synthetic)))["image"])
    real = _rows(torch.stack([train[i]["image"] for i in range(len(train))]))
    assert not generated & real
    _, seen, _ = runs["synthetic-pretrain@3+real"]
    for batch in seen[:3]:
        assert len(batch) == BATCH and _rows(batch) <= generated
    for batch in seen[3:]:
        assert _rows(batch) <= real


def test_pretraining_changes_the_weights_and_is_deterministic(arms):
    _, _, runs = arms
    real, once, twice = (
        runs[name][0].state_dict()
        for name in ("real", "synthetic-pretrain+real", "synthetic-pretrain+real#2")
    )
    assert all(torch.equal(once[key], twice[key]) for key in once)  # the same seed: the same classifier
    assert any(not torch.equal(once[key], real[key]) for key in once if once[key].is_floating_point())
    assert any(
        not torch.equal(once[key], runs["synthetic-pretrain@3+real"][0].state_dict()[key]) for key in once
    )


@pytest.mark.slow
def test_a_study_with_synthetic_pretraining_and_teacher_labels(tmp_path, chest28_path):
    """A tiny study: the pretraining arm's record counts both phases, it is not the cell's teacher (the real
    arm), its row keeps its GAN, and the summary compares it with real."""
    config = load_study_config("quick", path=str(chest28_path))
    config.fractions, config.conditions = (
        [0.25],
        ["real", "synthetic-pretrain+real", "synthetic-pretrain@4+real"],
    )
    config.gan = {**config.gan, "iterations": 8, "batch_size": 16, "base_channels": 8}
    config.classifier = {"iterations": 6, "batch_size": 32, "lr": 0.001}
    config.synthetic = {"num_samples": 64, "labels": "teacher"}
    config.bootstrap = {"n_boot": 30}
    config.evaluation = {"enabled": False}
    out = run_study(config, tmp_path / "study", progress=False)
    records = {r["condition"]: r for r in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))}
    assert set(records) == set(config.conditions)
    assert [records[c]["synthetic_pretrain_iterations"] for c in config.conditions] == [0, 6, 4]
    assert {records[c]["classifier_iterations"] for c in config.conditions} == {6}
    pretrained = records["synthetic-pretrain+real"]
    assert pretrained["synthetic_labels"] == "teacher" and pretrained["gan_dir"].startswith("gans/")
    assert pretrained["num_synthetic"] == 64 and pretrained["synthetic_ratio"] == 0
    assert pretrained["teacher"] == records["real"]["teacher"]
    assert pretrained["classifier_seconds"] > pretrained["synthetic_pretrain_seconds"] > 0
    with (
        np.load(out / "scores" / f"{records['real']['key']}.npz") as real,
        np.load(out / "scores" / f"{pretrained['key']}.npz") as mine,
    ):
        assert not np.array_equal(real["scores"], mine["scores"])  # trained, not the teacher reused
    rows = {r["condition"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert (
        rows["synthetic-pretrain+real"]["gan_dir"] == pretrained["gan_dir"] and rows["real"]["gan_dir"] == ""
    )
    summary = (out / "summary.md").read_text()
    assert (
        "| synthetic-pretrain+real vs real |" in summary
        and "| synthetic-pretrain@4+real vs real |" in summary
    )


def test_classify_runs_synthetic_pretraining_on_the_packaged_sample(tmp_path, chest28_path):
    train = MedMNISTDataset(path=chest28_path)
    torch.manual_seed(0)
    generator = DCGANGenerator(image_size=28, latent_dim=16, num_labels=14, base_channels=8)
    gan = save_generator(generator, tmp_path / "gan" / "generator.pt", meta={"train_labels": train.targets})
    common = {"path": str(chest28_path), "fraction": 0.25, "iterations": 4, "batch_size": 32, "threads": 1}
    common["progress"] = False
    real = train_classifier_run(ClassifierRunConfig(out=str(tmp_path / "real"), **common))
    runs = [
        train_classifier_run(
            ClassifierRunConfig(
                out=str(tmp_path / name),
                condition="synthetic-pretrain@3+real",
                gan_run=str(gan),
                num_synthetic=64,
                **common,
            )
        )  # fmt: skip
        for name in ("a", "b")
    ]
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    assert metrics["iterations"] == 4 and metrics["examples_seen"] == 4 * 32
    assert metrics["synthetic_pretraining"]["iterations"] == 3
    assert metrics["synthetic_pretraining"]["examples_seen"] == 3 * 32
    assert json.loads((real / "metrics.json").read_text())["synthetic_pretraining"] is None
    assert len((runs[0] / "losses.csv").read_text().splitlines()) == 1 + 4  # the real phase's steps
    weights = [load_classifier(run / "classifier.pt")[0].state_dict() for run in (real, *runs)]
    assert all(torch.equal(weights[1][key], weights[2][key]) for key in weights[1])
    assert any(not torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    with pytest.raises(ValueError, match="mixes in generated images: give gan_run"):
        train_classifier_run(
            ClassifierRunConfig(out=str(tmp_path / "x"), condition="synthetic-pretrain+real", **common)
        )
