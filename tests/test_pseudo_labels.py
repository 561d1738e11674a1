"""The teacher and the pseudo-label control: ``real+pseudo@R`` (Lee 2013) and teacher labels for generated images.

Short runs on the packaged NIH1000 sample (691 training images, 76 val, 233 test, 14 findings).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from medgan_aug.apps import teacher as teacher_module
from medgan_aug.apps.classify import ClassifierRunConfig, train_classifier_run
from medgan_aug.apps.study.conditions import condition_batch_transform
from medgan_aug.apps.study.config import StudyConfig, load_study_config, parse_condition
from medgan_aug.apps.study.sections import check_conditions
from medgan_aug.apps.study.study import run_study
from medgan_aug.apps.teacher import (
    pseudo_labelled_pool,
    teacher_labelled_synthetic,
    teacher_labeller,
    train_teacher,
    weights_fingerprint,
)
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.stratify import low_data_indices
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.data.teacher_labelled import TeacherLabelledDataset
from medgan_aug.engines import classifier_trainer
from medgan_aug.engines.classifier_trainer import predict
from medgan_aug.networks.classifiers import build_classifier, loss_for_task
from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.networks.model_file import load_classifier
from medgan_aug.transforms.mix import MixSyntheticd

FRACTION = 0.25


@pytest.fixture(scope="module")
def cell(chest28_path):
    """The labelled subset of (0.25, seed 0), a briefly trained teacher and its pseudo-labelled pool."""
    data = {"path": chest28_path, "flag": "chestmnist"}
    indices = low_data_indices(MedMNISTDataset(split="train", **data).labels, fraction=FRACTION, seed=0)
    train = MedMNISTDataset(split="train", indices=indices, **data)
    model, _ = train_teacher(train, "small_cnn", iterations=8, batch_size=32, lr=1e-3, seed=0)
    pool = pseudo_labelled_pool(data, indices, teacher_labeller(model, train.task))
    return data, indices, train, model, pool


def test_parse_condition_accepts_and_refuses_pseudo():
    pseudo = parse_condition("real+pseudo@0.5")
    assert (pseudo.pseudo_ratio, pseudo.synthetic_ratio, pseudo.needs_pool, pseudo.needs_gan) == (
        0.5,
        0,
        True,
        False,
    )
    combined = parse_condition("real+pseudo@0.25+classical")
    assert combined.classical and combined.pseudo_ratio == 0.25
    assert parse_condition("real+synthetic@0.5").pseudo_ratio == 0 and not parse_condition("real").needs_pool
    for bad in (
        "real+pseudo",
        "real+pseudo@1",
        "real+pseudo@0",
        "real+pseudo@x",
        "real+pseudo@0.5+synthetic@0.5",
        "real+pseudo@0.5+mixup",
        "real+pseudo@0.5+pseudo@0.5",
        "pseudo@0.5",
    ):
        with pytest.raises(ValueError, match=re.escape(f"unknown condition {bad!r}") + ".*real\\+pseudo@R"):
            parse_condition(bad)
    with pytest.raises(ValueError, match="'real\\+pseudo@.5' is the same condition as 'real\\+pseudo@0.5'"):
        check_conditions(["real", "real+pseudo@0.5", "real+pseudo@.5"])
    with pytest.raises(ValueError, match="give pseudo="):
        condition_batch_transform(pseudo)
    with pytest.raises(ValueError, match="pseudo= is only used by real\\+pseudo@R"):
        condition_batch_transform(parse_condition("real+classical"), pseudo=object())


def test_teacher_scores_are_probabilities_and_reach_the_loss_unrounded(cell, monkeypatch):
    data, indices, train, model, pool = cell
    scores = pool.scores.numpy()
    assert scores.shape == (691 - len(indices), 14) and scores.dtype == np.float32
    assert 0 < scores.min() and scores.max() < 1  # soft: nothing rounded to 0 or 1
    assert len(np.unique(scores)) > 1000
    expected = torch.sigmoid(model(pool.images(np.arange(len(pool))))).detach().numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)

    targets_seen: list[torch.Tensor] = []

    class SpyLoss(torch.nn.BCEWithLogitsLoss):
        def forward(self, logits, targets):
            targets_seen.append(targets.detach().clone())
            return super().forward(logits, targets)

    monkeypatch.setattr(classifier_trainer, "loss_for_task", lambda task: SpyLoss())
    student = build_classifier("small_cnn", 1, 14, 28, seed=1)
    mix = condition_batch_transform(parse_condition("real+pseudo@0.5"), pseudo=pool)
    classifier_trainer.train_classifier(
        student, train, task=train.task, iterations=3, batch_size=32, seed=1, batch_transform=mix
    )
    assert len(targets_seen) == 3
    rows = torch.cat(targets_seen)
    soft = rows[(rows > 0) & (rows < 1)]
    assert soft.numel() == 3 * 16 * 14  # half of every batch of 32 carries the teacher's scores, unrounded
    pool_rows = {tuple(r) for r in pool.scores.tolist()}
    mixed = [tuple(r) for r in rows.tolist() if any(0 < v < 1 for v in r)]
    assert len(mixed) == 48 and all(r in pool_rows for r in mixed)


def test_soft_targets_are_what_each_loss_sees():
    """BCE-with-logits (multi-label, binary) and cross-entropy (multi-class) take probabilities as targets."""
    logits = torch.tensor([[0.3, -1.2, 2.0]])
    soft = torch.tensor([[0.2, 0.5, 0.3]])
    ce = loss_for_task("multi-class")(logits, soft)
    assert torch.isclose(ce, -(soft * torch.log_softmax(logits, 1)).sum())
    bce = loss_for_task("multi-label, binary-class")(logits, soft)
    manual = -(
        soft * torch.nn.functional.logsigmoid(logits) + (1 - soft) * torch.nn.functional.logsigmoid(-logits)
    )
    assert torch.isclose(bce, manual.mean())
    assert not torch.isclose(ce, loss_for_task("multi-class")(logits, torch.tensor([[0.0, 0.0, 1.0]])))


def test_pseudo_pool_never_holds_a_labelled_val_or_test_image(cell):
    data, indices, train, model, pool = cell
    everything = MedMNISTDataset(split="train", **data)
    assert pool.source.indices.tolist() == sorted(set(range(691)) - set(indices.tolist()))
    pool_images = {image.tobytes() for image in pool.source.images}
    assert len(pool_images) == len(pool) == 691 - len(indices)
    forbidden = {image.tobytes() for image in everything.images[indices]}
    for split in ("val", "test"):
        forbidden |= {image.tobytes() for image in MedMNISTDataset(split=split, **data).images}
    assert not pool_images & forbidden
    # what the transform mixes into batches: every replaced row is a pool image, never another one
    mix = condition_batch_transform(parse_condition("real+pseudo@0.5"), pseudo=pool)
    mix.set_random_state(seed=3)
    loader = torch.utils.data.DataLoader(
        train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    drawn = 0
    for _ in range(4):
        for batch in loader:
            out = mix(batch)
            for image in out["image"][out["synthetic"]]:
                key = (image[0] * 255).round().to(torch.uint8).numpy().tobytes()
                assert key in pool_images and key not in forbidden
                drawn += 1
    assert len(train) == 5 * 32 + 13 and drawn == 4 * (5 * 16 + 7)  # round(0.5 * B) rows per batch, 13 -> 7


def test_teacher_labelled_synthetic_images_replace_the_generator_labels():
    torch.manual_seed(0)
    unconditional = DCGANGenerator(image_size=28, latent_dim=16, num_labels=0, base_channels=8)
    synthetic = SyntheticDataset(unconditional, 300, seed=4)
    assert not synthetic.has_labels
    teacher = build_classifier("small_cnn", 1, 14, 28, seed=0)
    labelled = teacher_labelled_synthetic(synthetic, teacher_labeller(teacher, "multi-label, binary-class"))
    again = teacher_labelled_synthetic(synthetic, teacher_labeller(teacher, "multi-label, binary-class"))
    assert torch.equal(labelled.scores, again.scores) and labelled.scores.shape == (300, 14)
    item = labelled[257]
    assert torch.equal(item["image"], synthetic[257]["image"]) and item["synthetic"] is True
    expected = torch.sigmoid(teacher.eval()(synthetic[257]["image"][None]))[0]
    assert torch.allclose(item["label"], expected, atol=1e-6)
    # the placebo: the same images, the teacher's scores permuted among them (from any starting order)
    shuffled = labelled.with_shuffled_labels(7)
    assert torch.equal(shuffled.images([5]), labelled.images([5]))
    assert sorted(map(tuple, shuffled.scores.tolist())) == sorted(map(tuple, labelled.scores.tolist()))
    assert not torch.equal(shuffled.scores, labelled.scores)
    assert torch.equal(labelled.with_shuffled_labels(3).with_shuffled_labels(7).scores, shuffled.scores)
    # the generated rows reach batches with the teacher's scores, through the synthetic arm's transform
    mix = condition_batch_transform(parse_condition("real+synthetic@0.5"), labelled)
    batch = mix({"image": torch.rand(8, 1, 28, 28), "label": torch.zeros(8, 14)})
    assert ((batch["label"][batch["synthetic"]] > 0) & (batch["label"][batch["synthetic"]] < 1)).all()
    with pytest.raises(ValueError, match="the synthetic source has none"):  # no labels without a teacher
        MixSyntheticd(source=synthetic, ratio=0.5)(
            {"image": torch.rand(4, 1, 28, 28), "label": torch.zeros(4, 14)}
        )
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        TeacherLabelledDataset(synthetic, lambda images: teacher(images))  # logits are refused


def test_fraction_one_has_no_pool_and_is_refused(cell, chest28_path, tmp_path):
    data, _, train, model, _ = cell
    with pytest.raises(ValueError, match=r"subset holds all 691 training images \(fraction 1.0\)"):
        pseudo_labelled_pool(data, np.arange(691), teacher_labeller(model, train.task))
    with pytest.raises(ValueError, match="conditions: real\\+pseudo@0.5 mixes in training images outside"):
        StudyConfig(data={"sample": "nih1000"}, fractions=[0.25, 1.0], conditions=["real", "real+pseudo@0.5"])
    config = ClassifierRunConfig(
        out=str(tmp_path / "run"), path=str(chest28_path), condition="real+pseudo@0.5"
    )
    with pytest.raises(ValueError, match="fraction 1.0 leaves none"):
        train_classifier_run(config)
    assert not (tmp_path / "run").exists()


def test_teacher_is_the_real_arms_classifier(cell):
    """train_teacher is the `real` path: same seed, same weights as building and training the classifier directly."""
    data, indices, train, model, _ = cell
    direct = build_classifier("small_cnn", 1, 14, 28, seed=0)
    classifier_trainer.train_classifier(
        direct, train, task=train.task, iterations=8, batch_size=32, lr=1e-3, seed=0
    )
    assert weights_fingerprint(direct) == weights_fingerprint(model)
    for name, tensor in direct.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name


def tiny_teacher_study(path: Path, conditions: list[str], labels: str = "teacher") -> StudyConfig:
    config = load_study_config("quick", path=str(path))
    config.fractions, config.conditions = [FRACTION], conditions
    config.gan = {**config.gan, "iterations": 12, "batch_size": 16, "base_channels": 8}
    config.classifier = {"iterations": 12, "batch_size": 32, "lr": 0.001}
    config.synthetic = {"num_samples": 96, "labels": labels}
    config.bootstrap = {"n_boot": 50}
    config.evaluation = {"enabled": False}
    return config


@pytest.mark.slow
def test_one_study_cell_trains_one_teacher_for_pseudo_and_synthetic_and_it_is_real(
    tmp_path, chest28_path, monkeypatch
):
    conditions = ["real", "real+pseudo@0.5", "real+synthetic@0.5", "real+shuffled@0.5"]
    config = tiny_teacher_study(chest28_path, conditions)
    calls = []
    original = teacher_module.train_teacher
    monkeypatch.setattr(teacher_module, "train_teacher", lambda *a, **k: calls.append(k) or original(*a, **k))
    out = run_study(config, tmp_path / "study", progress=False)
    assert len(calls) == 1  # one teacher for the cell, trained once
    teachers = list((out / "teachers").iterdir())
    assert len(teachers) == 1
    records = {r["condition"]: r for r in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))}
    assert set(records) == set(conditions)
    assert {r["teacher"] for r in records.values()} == {f"teachers/{teachers[0].name}"}
    fingerprint = load_classifier(teachers[0])[1]["fingerprint"]
    assert {r["teacher_fingerprint"] for r in records.values()} == {fingerprint}
    assert records["real+pseudo@0.5"]["num_pseudo"] == 691 - records["real"]["n_train"]
    assert (
        records["real+synthetic@0.5"]["synthetic_labels"] == "teacher" and records["real"]["num_pseudo"] == 0
    )
    # the real arm's scores are the teacher's: same weights, same test scores
    teacher, _ = load_classifier(teachers[0])
    test = MedMNISTDataset(split="test", path=chest28_path)
    scores, _ = predict(teacher, test, task=test.task)
    with np.load(out / "scores" / f"{records['real']['key']}.npz") as saved:
        np.testing.assert_array_equal(saved["scores"], scores)
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert sorted(r["condition"] for r in rows) == sorted(conditions)
    assert "| real+pseudo@0.5 vs real |" in (out / "summary.md").read_text()
    # resumed with one more condition: the teacher file is reused, not trained again
    config.conditions = [*conditions, "real+pseudo@0.25"]
    run_study(config, out, progress=False)
    assert len(calls) == 1 and list((out / "teachers").iterdir()) == teachers


def test_unconditional_generator_with_conditional_labels_is_refused_before_training(tmp_path, chest28_path):
    config = tiny_teacher_study(chest28_path, ["real", "real+synthetic@0.5"], labels="conditional")
    config.gan = {**config.gan, "conditional": False}
    with pytest.raises(ValueError, match="gan.conditional is false: .*synthetic.labels: teacher"):
        run_study(config, tmp_path / "study", progress=False)
    assert not (tmp_path / "study" / "gans").exists()
    with pytest.raises(ValueError, match="synthetic.labels must be 'conditional' or 'teacher', got 'soft'"):
        StudyConfig(data={"sample": "nih1000"}, synthetic={"labels": "soft"})


@pytest.mark.slow
def test_classify_trains_the_teacher_or_takes_a_finished_real_run(tmp_path, chest28_path):
    common = {
        "path": str(chest28_path),
        "fraction": FRACTION,
        "iterations": 6,
        "batch_size": 32,
        "threads": 1,
    }
    common["progress"] = False
    real = train_classifier_run(ClassifierRunConfig(out=str(tmp_path / "real"), **common))
    trained = train_classifier_run(
        ClassifierRunConfig(out=str(tmp_path / "trained"), condition="real+pseudo@0.5", **common)
    )
    reused = train_classifier_run(
        ClassifierRunConfig(
            out=str(tmp_path / "reused"), condition="real+pseudo@0.5", teacher=str(real), **common
        )
    )
    a, b = (json.loads((run / "metrics.json").read_text()) for run in (trained, reused))
    real_model, _ = load_classifier(real / "classifier.pt")
    assert a["teacher"]["fingerprint"] == b["teacher"]["fingerprint"] == weights_fingerprint(real_model)
    assert a["teacher"]["num_pseudo"] == 691 - 173 and a["auc"] == b["auc"]
    assert b["teacher"]["source"] == str(real)
    with pytest.raises(ValueError, match="a teacher is a run of condition 'real'"):
        train_classifier_run(
            ClassifierRunConfig(
                out=str(tmp_path / "x"), condition="real+pseudo@0.5", teacher=str(trained), **common
            )
        )
    other = {**common, "fraction": 0.1}
    with pytest.raises(ValueError, match="trained on another subset"):
        train_classifier_run(
            ClassifierRunConfig(
                out=str(tmp_path / "y"), condition="real+pseudo@0.5", teacher=str(real), **other
            )
        )
    with pytest.raises(ValueError, match="only used by real\\+pseudo@R and --synthetic-labels teacher"):
        train_classifier_run(ClassifierRunConfig(out=str(tmp_path / "z"), teacher=str(real), **common))


def test_classify_labels_an_unconditional_generator_with_the_teacher(tmp_path, chest28_path):
    from medgan_aug.networks.model_file import save_generator

    torch.manual_seed(0)
    generator = tmp_path / "gan" / "generator.pt"
    save_generator(DCGANGenerator(image_size=28, latent_dim=16, num_labels=0, base_channels=8), generator)
    common = {
        "path": str(chest28_path),
        "fraction": FRACTION,
        "iterations": 4,
        "batch_size": 32,
        "threads": 1,
    }
    common.update(progress=False, gan_run=str(generator), num_synthetic=64, condition="real+synthetic@0.5")
    with pytest.raises(
        ValueError, match="unconditional generator, whose images have no labels: use --synthetic"
    ):
        train_classifier_run(ClassifierRunConfig(out=str(tmp_path / "conditional"), **common))
    run = train_classifier_run(
        ClassifierRunConfig(out=str(tmp_path / "run"), synthetic_labels="teacher", **common)
    )
    record = json.loads((run / "metrics.json").read_text())
    assert record["teacher"]["source"] == "trained in this run" and record["teacher"]["num_pseudo"] == 0
    assert 0 <= record["auc"] <= 1
    with pytest.raises(
        ValueError, match="synthetic_labels 'teacher' labels generated images, and condition 'real'"
    ):
        train_classifier_run(
            ClassifierRunConfig(out=str(tmp_path / "x"), path=str(chest28_path), synthetic_labels="teacher")
        )
