"""MixSynthetic / MixSyntheticd / MixedDataset: counts, alignment, reproducibility, errors, end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import DataLoader, list_data_collate

from medgan_aug.apps.train import GANConfig, train_gan
from medgan_aug.data.label_samplers import JointLabelSampler
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.engines.classifier_trainer import train_classifier
from medgan_aug.networks.classifiers import build_classifier
from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.transforms.mix import MixedDataset, MixSynthetic, MixSyntheticd, mixed_dataset, num_synthetic


@pytest.fixture(scope="module")
def real_train(chest28_path):
    return MedMNISTDataset(path=chest28_path, split="train")


@pytest.fixture(scope="module")
def source(real_train):
    torch.manual_seed(0)
    generator = DCGANGenerator(image_size=28, latent_dim=16, num_labels=14, base_channels=8).eval()
    return SyntheticDataset(generator, 512, label_pool=real_train.targets, seed=1).materialize()


@pytest.fixture(scope="module")
def real_batch(real_train):
    return list_data_collate([real_train[i] for i in range(16)])


def _source_index(source, image):
    """Which source item an image is (exact bytes), or -1."""
    images = _all_images(source)
    hits = torch.nonzero((images == image).flatten(1).all(1)).flatten()
    return int(hits[0]) if len(hits) else -1


_ALL: dict[int, torch.Tensor] = {}


def _all_images(source):
    if id(source) not in _ALL:
        _ALL[id(source)] = source.get_batch(range(len(source)))["image"]
    return _ALL[id(source)]


@pytest.mark.parametrize("mode", ["replace", "append"])
def test_exact_synthetic_count_and_alignment(source, real_train, mode):
    for batch_size in (1, 2, 3, 7, 16):
        batch = list_data_collate([real_train[i] for i in range(batch_size)])
        for ratio in (0.0, 0.25, 0.5, 1.0):
            mix = MixSyntheticd(
                keys=("image", "label"), source=source, ratio=ratio, mode=mode
            ).set_random_state(3)
            out = mix(batch)
            n = num_synthetic(ratio, batch_size)
            assert n == int(np.floor(ratio * batch_size + 0.5))
            length = batch_size if mode == "replace" else batch_size + n
            mask = out["synthetic"]
            assert mask.dtype == torch.bool and mask.shape == (length,) and int(mask.sum()) == n
            assert out["image"].shape == (length, 1, 28, 28) and out["label"].shape == (length, 14)
            if mode == "append":
                assert not mask[:batch_size].any()
            real_rows = torch.nonzero(~mask).flatten()
            kept = real_rows if mode == "replace" else real_rows  # real rows stay at their positions
            assert torch.equal(out["image"][kept], batch["image"][kept])
            assert torch.equal(out["label"][kept], batch["label"][kept])
            for row in torch.nonzero(mask).flatten().tolist():  # image and label of one synthetic item
                j = _source_index(source, out["image"][row])
                assert j >= 0 and torch.equal(out["label"][row], source[j]["label"])
    assert num_synthetic(0.5, 3) == 2 and num_synthetic(0.5, 5) == 3 and num_synthetic(0.3, 10) == 3


def test_input_batch_untouched_and_array_version(source, real_batch):
    before = real_batch["image"].clone()
    mixer = MixSynthetic(source, ratio=0.5).set_random_state(0)
    images, labels, mask = mixer(real_batch["image"], real_batch["label"])
    assert torch.equal(real_batch["image"], before)
    assert int(mask.sum()) == 8 and images.shape == before.shape and labels.shape == (16, 14)
    images_only, none, mask2 = MixSynthetic(source, ratio=0.5).set_random_state(0)(real_batch["image"])
    assert none is None and torch.equal(images_only, images) and torch.equal(mask2, mask)
    d = MixSyntheticd(keys=("image", "label"), source=source, ratio=0.5).set_random_state(0)(real_batch)
    assert torch.equal(d["image"], images) and torch.equal(
        d["label"], labels
    )  # same stream as the array form


def test_set_random_state_reproducible(source, real_batch):
    def run(seed):
        mix = MixSyntheticd(keys=("image", "label"), source=source, ratio=0.5, prob=0.7)
        mix.set_random_state(seed=seed)
        return [mix(real_batch) for _ in range(6)]

    a, b, c = run(7), run(7), run(8)
    for x, y in zip(a, b):
        assert all(torch.equal(x[k], y[k]) for k in ("image", "label", "synthetic"))
    assert any(not torch.equal(x["image"], y["image"]) for x, y in zip(a, c))
    # consecutive batches draw differently
    assert not torch.equal(a[0]["image"], a[1]["image"]) or not torch.equal(a[1]["image"], a[2]["image"])


def test_prob_controls_how_often_it_acts(source, real_batch):
    never = MixSyntheticd(source=source, ratio=0.5, prob=0.0).set_random_state(0)
    out = never(real_batch)
    assert not out["synthetic"].any() and torch.equal(out["image"], real_batch["image"])
    half = MixSyntheticd(source=source, ratio=0.5, prob=0.5).set_random_state(0)
    acted = sum(bool(half(real_batch)["synthetic"].any()) for _ in range(200))
    assert abs(acted - 100) <= 4.5 * np.sqrt(200 * 0.25)  # binomial(200, 0.5)


def test_other_keys_and_existing_mask(source, real_batch):
    batch = dict(
        real_batch,
        index=torch.arange(16),
        names=[f"n{i}" for i in range(16)],
        epoch=3,
        synthetic=torch.zeros(16, dtype=torch.bool),
    )
    batch["synthetic"][0] = True
    out = MixSyntheticd(source=source, ratio=0.25, mode="append").set_random_state(1)(batch)
    assert "index" not in out and "names" not in out and out["epoch"] == 3
    assert out["synthetic"].shape == (20,) and int(out["synthetic"].sum()) == 5 and out["synthetic"][0]
    strict = MixSyntheticd(source=source, ratio=0.25, unmatched="error")
    with pytest.raises(ValueError, match=r"per-sample entries \['index', 'names'\]"):
        strict(batch)
    images_only = MixSyntheticd(
        keys=("image", "label"), source=source, allow_missing_keys=True
    ).set_random_state(0)
    out = images_only({"image": real_batch["image"]})
    assert "label" not in out and int(out["synthetic"].sum()) == 8


def test_generator_source(real_batch, real_train):
    torch.manual_seed(0)
    generator = DCGANGenerator(image_size=28, latent_dim=16, num_labels=14, base_channels=8)
    sampler = JointLabelSampler(real_train.targets)
    mix = MixSyntheticd(source=generator, label_sampler=sampler, ratio=0.5)
    a = mix.set_random_state(5)(real_batch)
    b = mix.set_random_state(5)(real_batch)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    rows = a["synthetic"]
    assert int(rows.sum()) == 8 and 0 <= a["image"][rows].min() and a["image"][rows].max() <= 1
    pool = {tuple(r) for r in real_train.targets.tolist()}
    assert all(tuple(r) in pool for r in a["label"][rows].tolist())


def test_bad_arguments(source, real_batch, real_train):
    torch.manual_seed(0)
    generator = DCGANGenerator(image_size=28, latent_dim=16, num_labels=14, base_channels=8)
    sampler = JointLabelSampler(real_train.targets)
    construct = [
        (ValueError, r"ratio must lie in \[0, 1\], got -0.1", dict(ratio=-0.1)),
        (ValueError, r"ratio must lie in \[0, 1\], got 1.5", dict(ratio=1.5)),
        (TypeError, "ratio must be a number, got str", dict(ratio="half")),
        (ValueError, r"prob must lie in \[0, 1\], got 2.0", dict(prob=2.0)),
        (ValueError, r"mode must be one of \('replace', 'append'\), got 'mix'", dict(mode="mix")),
        (TypeError, "source must be a SyntheticDataset or a generator nn.Module, got list", dict(source=[1])),
        (TypeError, "needs source=", dict(source=None)),
        (ValueError, "needs label_sampler", dict(source=generator)),
        (
            ValueError,
            "label width mismatch: label_sampler gives 3",
            dict(source=generator, label_sampler=JointLabelSampler(np.eye(3))),
        ),
        (ValueError, "unmatched must be 'drop' or 'error', got 'keep'", dict(unmatched="keep")),
        (ValueError, "keys must be", dict(keys=("image", "label", "extra"))),
    ]
    for error, message, kwargs in construct:
        with pytest.raises(error, match=message):
            MixSyntheticd(**(dict(keys=("image", "label"), source=source) | kwargs))
    mix = MixSyntheticd(source=source)
    with pytest.raises(ValueError, match=r"batch lacks key\(s\) \['label'\]"):
        mix({"image": real_batch["image"]})
    with pytest.raises(
        ValueError, match=r"image size mismatch: the batch has images \(1, 32, 32\).*\(1, 28, 28\)"
    ):
        mix({"image": torch.zeros(4, 1, 32, 32), "label": torch.zeros(4, 14)})
    with pytest.raises(ValueError, match=r"label width mismatch: the batch has labels \(4, 1\).*\(4, 14\)"):
        mix({"image": torch.zeros(4, 1, 28, 28), "label": torch.zeros(4, 1)})
    with pytest.raises(TypeError, match="floating point.*torch.uint8"):
        mix({"image": torch.zeros(4, 1, 28, 28, dtype=torch.uint8), "label": torch.zeros(4, 14)})
    with pytest.raises(TypeError, match="collated batch dict, got list"):
        mix([real_batch])
    on_meta = DCGANGenerator(image_size=28, latent_dim=16, num_labels=14, base_channels=8).to("meta")
    with pytest.raises(
        ValueError, match="device mismatch: the generator source is on meta but the batch is on cpu"
    ):
        MixSyntheticd(source=on_meta, label_sampler=sampler)(real_batch)
    unlabelled = SyntheticDataset(DCGANGenerator(28, 16, 0, 8), 64)
    with pytest.raises(ValueError, match="synthetic source has none"):
        MixSyntheticd(source=unlabelled)(real_batch)


def _mixing_collate(mix):
    def collate(items):
        return mix(list_data_collate(items))

    return collate


def test_worker_seeding(source, real_train):
    """In DataLoader workers each worker draws its own stream, reproducibly for a seeded loader."""

    def batches():
        mix = MixSyntheticd(source=source, ratio=0.5).set_random_state(0)
        loader = DataLoader(
            real_train,
            batch_size=8,
            num_workers=2,
            collate_fn=_mixing_collate(mix),
            generator=torch.Generator().manual_seed(123),
        )
        out = []
        for i, batch in enumerate(loader):
            out.append(batch)
            if i == 3:
                break
        return out

    a, b = batches(), batches()
    for x, y in zip(a, b):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["synthetic"], y["synthetic"])
    # batches 0 and 1 come from workers 0 and 1: without per-worker seeding they would draw the same
    # synthetic items at the same rows
    syn0 = a[0]["image"][a[0]["synthetic"]]
    syn1 = a[1]["image"][a[1]["synthetic"]]
    assert not torch.equal(syn0, syn1)


def test_mixed_dataset_exact_share(source, real_train):
    real = MedMNISTDataset(path=real_train.source, split="train", indices=np.arange(90))
    mixed = mixed_dataset(real, source, synthetic_share=0.25, seed=0)
    assert isinstance(mixed, MixedDataset) and mixed.num_synthetic == 30 and len(mixed) == 120
    flags = torch.cat([b["synthetic"] for b in DataLoader(mixed, batch_size=32, shuffle=True)])
    assert flags.dtype == torch.bool and int(flags.sum()) == 30 and len(flags) == 120
    first = mixed.synthetic_indices.copy()
    mixed.set_epoch(1)
    assert not np.array_equal(first, mixed.synthetic_indices) and len(set(mixed.synthetic_indices)) == 30
    mixed.set_epoch(0)
    assert np.array_equal(first, mixed.synthetic_indices)
    assert mixed[0]["synthetic"] is False and mixed[119]["synthetic"] is True
    with pytest.raises(ValueError, match=r"synthetic_share must lie in \[0, 1\), got 1.0"):
        MixedDataset(real, source, 1.0)
    with pytest.raises(ValueError, match="needs 810 synthetic items, but the synthetic dataset has 512"):
        MixedDataset(real, source, 0.9)
    other = SyntheticDataset(DCGANGenerator(64, 16, 14, 8), 64, label_pool=real_train.targets)
    with pytest.raises(
        ValueError, match=r"image size mismatch: real image \(1, 28, 28\), synthetic image \(1, 64, 64\)"
    ):
        MixedDataset(real, other, 0.25)


@pytest.fixture
def one_thread():
    """Tiny networks on a shared 2-core machine run several times faster on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_end_to_end_on_real_data(tmp_path, chest28_path, real_train, one_thread):
    """Train a tiny conditional GAN with the real trainer, build the dataset from the run, mix, train."""
    config = GANConfig(
        path=str(chest28_path),
        conditional=True,
        fraction=0.5,
        latent_dim=32,
        base_channels=8,
        iterations=150,
        batch_size=32,
        out=str(tmp_path / "run"),
        checkpoint_every=1000,
        sample_every=1000,
        n_samples=16,
        standing_stats_batches=2,
        progress=False,
    )
    run = train_gan(config)
    synthetic = SyntheticDataset.from_run(run, 256, seed=0)
    assert synthetic.num_labels == 14 and synthetic.label_names == real_train.label_names
    pool = synthetic.label_sampler.pool
    assert pool.shape[0] == synthetic.meta["num_images"] and abs(pool.shape[0] - 0.5 * len(real_train)) <= 1
    mix = MixSyntheticd(keys=("image", "label"), source=synthetic.materialize(), ratio=0.5).set_random_state(
        0
    )
    batch = next(iter(DataLoader(real_train, batch_size=32, shuffle=True, num_workers=0)))
    mixed = mix(batch)
    assert mixed["image"].shape == (32, 1, 28, 28) and int(mixed["synthetic"].sum()) == 16
    fake = mixed["image"][mixed["synthetic"]]
    assert 0 <= fake.min() and fake.max() <= 1 and fake.std() > 0.01
    model = build_classifier("small_cnn", 1, 14, 28, seed=0)
    result = train_classifier(
        model, real_train, task=real_train.task, iterations=3, batch_size=32, batch_transform=mix
    )
    assert result["iterations"] == 3 and np.all(np.isfinite(result["losses"]))
