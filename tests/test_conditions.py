"""Study conditions and controls: parsing, their batch transforms, same real batches in every arm, the
placebo's pairing, and several classifier seeds per GAN."""

from __future__ import annotations

import json
import re

import pytest
import torch
from monai.transforms import Compose

from medgan_aug.apps.study import runner as study_runner
from medgan_aug.apps.study.conditions import condition_batch_transform, parse_condition
from medgan_aug.apps.study.config import (
    RunSpec,
    StudyConfig,
    classifier_run_seed,
    expand_grid,
    load_study_config,
    run_key,
)
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.transforms import BatchClassicalAugmentationd, CutMixBatchd, MixSyntheticd, MixUpBatchd


def test_new_conditions_parse_and_bad_ones_are_refused():
    placebo = parse_condition("real+shuffled@0.5")
    assert placebo.synthetic_ratio == 0.5 and placebo.shuffled_labels and placebo.needs_gan
    assert not parse_condition("real+synthetic@0.5").shuffled_labels
    assert parse_condition("real+mixup").mixer == "mixup" and not parse_condition("real+mixup").needs_gan
    assert (
        parse_condition("real+cutmix+classical").classical
        and parse_condition("real+cutmix").mixer == "cutmix"
    )
    for bad in ("real+shuffled@1", "real+shuffled", "real+mixup+cutmix", "real+synthetic@0.5+mixup",
                "real+shuffled@0.5+synthetic@0.5", "mixup", "real+mixup+mixup"):  # fmt: skip
        with pytest.raises(ValueError, match=re.escape(f"unknown condition {bad!r}") + ".*real\\+shuffled@R"):
            parse_condition(bad)


def test_each_condition_gets_its_batch_transform(chest28_path):
    train = MedMNISTDataset(path=chest28_path)  # its first 50 items have no finding at all
    torch.manual_seed(0)
    generator = DCGANGenerator(28, num_labels=14, base_channels=8)
    source = SyntheticDataset(generator, 64, label_pool=train.targets).materialize()
    assert condition_batch_transform(parse_condition("real")) is None
    assert isinstance(
        condition_batch_transform(parse_condition("real+classical")), BatchClassicalAugmentationd
    )
    assert isinstance(condition_batch_transform(parse_condition("real+mixup")), MixUpBatchd)
    assert isinstance(condition_batch_transform(parse_condition("real+cutmix")), CutMixBatchd)
    assert isinstance(condition_batch_transform(parse_condition("real+synthetic@0.5"), source), MixSyntheticd)
    chained = condition_batch_transform(parse_condition("real+synthetic@0.5+classical"), source)
    assert isinstance(chained, Compose)  # classical first: only real rows are augmented
    assert [type(t) for t in chained.transforms] == [BatchClassicalAugmentationd, MixSyntheticd]
    with pytest.raises(ValueError, match="'real\\+shuffled@0.5' mixes in generated images: give synthetic="):
        condition_batch_transform(parse_condition("real+shuffled@0.5"))
    with pytest.raises(ValueError, match="synthetic= is only used by conditions with generated rows"):
        condition_batch_transform(parse_condition("real+mixup"), source)

    # the placebo mixes the very same generated images into the same rows, with labels from other items
    items = [train[i] for i in range(32)]
    batch = {key: torch.stack([item[key] for item in items]) for key in ("image", "label")}
    mixed = condition_batch_transform(parse_condition("real+synthetic@0.5"), source).set_random_state(seed=4)
    placebo = condition_batch_transform(parse_condition("real+shuffled@0.5"), source, shuffle_labels_seed=4)
    placebo.set_random_state(seed=4)
    labels_differ = 0
    for _ in range(5):
        a, b = mixed(batch), placebo(batch)
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["synthetic"], b["synthetic"])
        assert torch.equal(a["label"][~a["synthetic"]], b["label"][~b["synthetic"]])  # real rows untouched
        labels_differ += int((a["label"] != b["label"]).any(1).sum())
    assert labels_differ > 20  # of 80 generated rows, most carry another item's findings
    assert torch.equal(source.get_batch(range(64))["label"], torch.as_tensor(source.targets))  # source kept


class Recorder:
    """Stands in for train_classifier's batch transform: records each batch before the condition's transform."""

    def __init__(self, inner):
        self.inner, self.before, self.after = inner, [], []

    def set_random_state(self, seed=None, state=None):
        if self.inner is not None:
            self.inner.set_random_state(seed, state)
        return self

    def __call__(self, batch):
        self.before.append({k: v.clone() for k, v in batch.items()})
        batch = self.inner(batch) if self.inner is not None else batch
        self.after.append(batch)
        return batch


def record_runs(monkeypatch) -> list[dict]:
    """Patch the study's train_classifier to record every run's seeds and batches (and still train)."""
    calls: list[dict] = []
    original = study_runner.train_classifier
    original_build = study_runner.build_classifier

    def recording(model, dataset, **kwargs):
        recorder = Recorder(kwargs["batch_transform"])
        calls.append({"seed": kwargs["seed"], "recorder": recorder, "dataset": dataset})
        return original(model, dataset, **{**kwargs, "batch_transform": recorder})

    def building(*args, seed, **kwargs):
        calls.append({"build_seed": seed})
        return original_build(*args, seed=seed, **kwargs)

    monkeypatch.setattr(study_runner, "train_classifier", recording)
    monkeypatch.setattr(study_runner, "build_classifier", building)
    return calls


def small_study(conditions: list[str], **fields) -> StudyConfig:
    config = load_study_config("quick")
    config.fractions, config.seeds, config.conditions = [0.25], [0], conditions
    config.classifier = {"iterations": 5, "batch_size": 16}
    config.evaluation = {"enabled": False}
    for name, value in fields.items():  # set after validation, as a loaded config would hold them
        setattr(config, name, value)
    return config


def test_mixup_cutmix_and_classical_see_the_real_arms_batches(tmp_path, monkeypatch):
    calls = record_runs(monkeypatch)
    config = small_study(["real", "real+mixup", "real+cutmix", "real+classical"])
    rows = study_runner.run_group(config, expand_grid(config), tmp_path)
    runs = [c for c in calls if "recorder" in c]
    assert [r["condition"] for r in rows] == ["real", "real+mixup", "real+cutmix", "real+classical"]
    assert len({c["seed"] for c in runs}) == 1
    assert all(len(c["dataset"].transform.transforms) == 0 for c in runs)  # no per-item transform in any arm
    real = runs[0]["recorder"]
    assert len(real.before) == 5
    for arm in runs[1:]:
        recorder = arm["recorder"]
        assert len(recorder.before) == len(real.before)
        for mine, reference in zip(recorder.before, real.before):  # same items, same order, same values
            assert torch.equal(mine["image"], reference["image"]) and torch.equal(
                mine["label"], reference["label"]
            )
        assert not torch.equal(recorder.after[0]["image"], recorder.before[0]["image"])  # it did act
    mixup_labels = runs[1]["recorder"].after[0]["label"]
    assert ((mixup_labels > 0) & (mixup_labels < 1)).any()  # targets mixed, not swapped
    assert len({r["auc"] for r in rows}) == 4


def test_two_classifier_seeds_per_gan_keep_the_first_runs_key(tmp_path, monkeypatch):
    calls = record_runs(monkeypatch)
    config = small_study(["real"], classifier_seeds=2)
    grid = expand_grid(config)
    assert [r.classifier_seed for r in grid] == [0, 1]
    # k = 0 keeps the key it had before classifier seeds existed (computed with the code before them)
    assert run_key(config, RunSpec(0.25, 0, "real", "small_cnn")) == "c28b90cd5b10"
    assert run_key(config, grid[1]) != run_key(config, grid[0])
    rows = study_runner.run_group(config, grid, tmp_path)
    assert [r["classifier_seed"] for r in rows] == [0, 1]
    assert [r["classifier_run_seed"] for r in rows] == [0, classifier_run_seed(0, 1)] and rows[1][
        "classifier_run_seed"
    ] != 0
    assert [c["build_seed"] for c in calls if "build_seed" in c] == [0, classifier_run_seed(0, 1)]
    assert [c["seed"] for c in calls if "seed" in c] == [0, classifier_run_seed(0, 1)]
    first, second = (c["recorder"].before[0]["image"] for c in calls if "recorder" in c)
    assert not torch.equal(first, second)  # another batch order
    assert rows[0]["auc"] != rows[1]["auc"]
    saved = {json.loads(p.read_text())["classifier_seed"] for p in (tmp_path / "runs").glob("*.json")}
    assert saved == {0, 1}
    assert classifier_run_seed(3, 0) == 3 and classifier_run_seed(3, 1) == classifier_run_seed(3, 1)
    assert len({classifier_run_seed(s, k) for s in range(5) for k in range(1, 5)}) == 20
    with pytest.raises(ValueError, match="classifier_seeds must be an integer >= 1, got 0"):
        StudyConfig(data={"sample": "nih1000"}, classifier_seeds=0)
    with pytest.raises(ValueError, match="classifier_seed must be an integer >= 0, got -1"):
        classifier_run_seed(0, -1)
