"""One generator for a whole study (``shared_gan``) and the on-disk cache of generated images it draws from
(:mod:`medgan_aug.data.synthetic_cache`)."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from medgan_aug.apps.study import runner as study_runner
from medgan_aug.apps.study.config import (
    SHARED_GAN_GROUP,
    RunSpec,
    StudyConfig,
    gan_key,
    gan_run_config,
    load_study_config,
    run_key,
)
from medgan_aug.apps.study.study import run_study
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.data.synthetic_cache import dataset_fingerprint
from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.networks.diffusion import DiffusionGenerator

SHARED_GAN = {"model": "ddpm", "conditional": False, "pool": "train"}


def shared_config(path, **changes) -> StudyConfig:
    settings = dict(
        data={"path": str(path)},
        fractions=[0.25, 0.5],
        seeds=[0],
        conditions=["real", "real+synthetic@0.5"],
        gan={**SHARED_GAN, "iterations": 2, "batch_size": 16, "base_channels": 8, "sampling_steps": 1},
        classifier={"iterations": 6, "batch_size": 32, "lr": 0.001},
        synthetic={"num_samples": 64, "labels": "teacher"},
        bootstrap={"n_boot": 20},
        evaluation={"enabled": False},
        shared_gan=True,
    )
    settings.update(changes)
    return StudyConfig(**settings)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"gan": {"model": "ddpm", "conditional": False}}, "shared_gan: true needs gan.pool: train"),
        ({"gan": {**SHARED_GAN, "conditional": True}}, "shared_gan: true needs gan.conditional: false"),
        ({"synthetic": {"labels": "conditional"}}, "shared_gan: true needs synthetic.labels: teacher"),
        ({"shared_gan": "yes"}, "shared_gan must be true or false, got 'yes'"),
    ],
)
def test_a_generator_that_would_differ_between_groups_is_not_shared(chest28_path, changes, message):
    with pytest.raises(ValueError, match=message):
        shared_config(chest28_path, **changes)


def test_every_group_keys_and_trains_the_one_generator(chest28_path):
    config = shared_config(chest28_path, seeds=[0, 3])
    keys = {gan_key(config, f, s) for f in config.fractions for s in config.seeds}
    assert len(keys) == 1
    settings = gan_run_config(config, 0.5, 3, size=28, out="g")
    assert (settings.fraction, settings.seed, settings.subset_seed) == (1.0, 0, 0) == (*SHARED_GAN_GROUP, 0)
    # not the key of a per-group generator with the same settings, nor of a shared one with other settings
    per_group = shared_config(chest28_path, shared_gan=False)
    assert gan_key(per_group, 0.25, 0) not in keys
    other = shared_config(chest28_path, gan={**config.gan, "iterations": 3})
    assert gan_key(other, 0.25, 0) not in keys
    # the runs of two groups keep their own keys: they differ in subset and teacher
    runs = [
        RunSpec(0.25, 0, "real+synthetic@0.5", "small_cnn"),
        RunSpec(0.5, 0, "real+synthetic@0.5", "small_cnn"),
    ]
    assert len({run_key(config, r) for r in runs}) == 2


def test_the_shipped_diffusion_row_config_shares_one_unconditional_pool_model():
    config = load_study_config("experiments/configs/pneumoniamnist_lowlabel_ddpm.yaml")
    assert config.shared_gan and config.gan["model"] == "ddpm" and config.gan["pool"] == "train"
    gan = load_study_config("experiments/configs/pneumoniamnist_lowlabel.yaml")
    # the GAN study's grid, classifier budget, images per generator and primary comparison
    for name in ("fractions", "seeds", "conditions", "classifier", "synthetic", "primary"):
        assert getattr(config, name) == getattr(gan, name), name


@pytest.mark.slow
def test_a_shared_generator_is_trained_once_and_its_images_drawn_once(tmp_path, chest28_path, monkeypatch):
    config = shared_config(chest28_path)
    trained, drawn, sources = [], [], []
    train_gan, generate_all = study_runner.train_gan, SyntheticDataset._generate_all
    source = study_runner._synthetic_source
    monkeypatch.setattr(study_runner, "train_gan", lambda c: trained.append(c) or train_gan(c))
    monkeypatch.setattr(SyntheticDataset, "_generate_all", lambda self: drawn.append(1) or generate_all(self))
    monkeypatch.setattr(
        study_runner, "_synthetic_source", lambda *a: sources.append(source(*a)) or sources[-1]
    )
    out = run_study(config, tmp_path / "study", progress=False)
    assert len(trained) == 1 and (trained[0].fraction, trained[0].seed) == SHARED_GAN_GROUP
    (gan_dir,) = (out / "gans").iterdir()
    assert (gan_dir / study_runner.SYNTHETIC_CACHE_FILE).is_file()
    assert len(sources) == 2 and len(drawn) == 1  # the second group read the images from the file
    torch.testing.assert_close(
        sources[0].get_batch(range(64)), sources[1].get_batch(range(64)), rtol=0, atol=0
    )
    records = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    assert sorted(r["fraction"] for r in records if r["condition"] == "real+synthetic@0.5") == [0.25, 0.5]
    assert {r["synthetic_labels"] for r in records if r["condition"] != "real"} == {"teacher"}
    summary = " ".join((out / "summary.md").read_text().split())
    assert "Generator: one for every (fraction, seed) group (`shared_gan`)" in summary
    assert "GAN: one per (fraction, seed)" not in summary


# ---------------------------------------------------------------------- the image cache


def dcgan_dataset(seed: int = 0, num: int = 300, **kwargs) -> SyntheticDataset:
    torch.manual_seed(0)
    generator = DCGANGenerator(28, num_labels=0, base_channels=8)
    return SyntheticDataset(generator, num, seed=seed, **kwargs)


def test_cached_images_are_read_back_byte_identical_without_generating(tmp_path, monkeypatch):
    cache = tmp_path / "images.pt"
    expected = dcgan_dataset().materialize()
    first = dcgan_dataset().materialize(cache)
    assert cache.is_file()
    torch.testing.assert_close(
        first.get_batch(range(300))["image"], expected.get_batch(range(300))["image"], rtol=0, atol=0
    )

    def no_generation(self):
        raise AssertionError("generated although the cache holds the images")

    monkeypatch.setattr(SyntheticDataset, "_generate_all", no_generation)
    again = dcgan_dataset().materialize(cache)
    torch.testing.assert_close(
        again.get_batch(range(300))["image"], expected.get_batch(range(300))["image"], rtol=0, atol=0
    )
    assert again[299]["image"].shape == (1, 28, 28) and len(again) == 300


def test_a_dataset_materialized_in_memory_writes_the_cache_without_generating_again(tmp_path, monkeypatch):
    dataset = dcgan_dataset().materialize()
    images = dataset.get_batch(range(300))["image"].clone()
    calls = []
    generate = SyntheticDataset._generate_chunk
    monkeypatch.setattr(
        SyntheticDataset, "_generate_chunk", lambda *a, **k: calls.append(1) or generate(*a, **k)
    )
    dataset.materialize(tmp_path / "later.pt")
    assert calls == [] and (tmp_path / "later.pt").is_file()
    again = dcgan_dataset().materialize(tmp_path / "later.pt")
    assert calls == []
    torch.testing.assert_close(again.get_batch(range(300))["image"], images, rtol=0, atol=0)


def test_a_cache_of_other_images_or_a_damaged_one_is_replaced_with_a_warning(tmp_path):
    cache = tmp_path / "images.pt"
    dcgan_dataset(seed=0).materialize(cache)
    with pytest.warns(UserWarning, match=f"synthetic cache file {cache} holds other images"):
        other = dcgan_dataset(seed=1).materialize(cache)
    torch.testing.assert_close(
        other.get_batch(range(10))["image"],
        dcgan_dataset(seed=1).get_batch(range(10))["image"],
        rtol=0,
        atol=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dcgan_dataset(seed=1).materialize(cache)  # the file now holds seed 1's images: read quietly
    cache.write_bytes(cache.read_bytes()[:100])
    with pytest.warns(UserWarning, match=r"is corrupt or truncated .*; generating its images again"):
        dcgan_dataset(seed=1).materialize(cache)


def test_the_fingerprint_covers_weights_count_seed_and_sampling_settings():
    base = dataset_fingerprint(dcgan_dataset())
    assert dataset_fingerprint(dcgan_dataset()) == base
    assert dataset_fingerprint(dcgan_dataset(seed=1)) != base
    assert dataset_fingerprint(dcgan_dataset(num=299)) != base
    changed = dcgan_dataset()
    with torch.no_grad():
        next(changed.generator.parameters()).add_(1e-3)
    assert dataset_fingerprint(changed) != base
    diffusion = DiffusionGenerator(28, 0, 8, num_inference_steps=2)
    one = dataset_fingerprint(SyntheticDataset(diffusion, 10))
    diffusion.set_sampling(3)
    assert dataset_fingerprint(SyntheticDataset(diffusion, 10)) != one
    with pytest.raises(
        ValueError, match="labels its items with a labeller, which a cache cannot fingerprint"
    ):
        dataset_fingerprint(dcgan_dataset(labeller=lambda x: torch.zeros(len(x), 1)))
