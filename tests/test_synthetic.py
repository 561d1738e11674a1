"""SyntheticDataset: item parity with real items, determinism, label modes, from_run, generate CLI."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from monai.data import DataLoader

from medgan_aug.cli import main as cli_main
from medgan_aug.data.label_samplers import BalancedLabelSampler, JointLabelSampler, chunk_generator
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.synthetic import CHUNK_SIZE, SyntheticDataset
from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.networks.model_file import save_generator


@pytest.fixture(scope="module")
def real_train(chest28_path):
    return MedMNISTDataset(path=chest28_path, split="train")


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return DCGANGenerator(image_size=28, latent_dim=16, num_labels=14, base_channels=8).eval()


@pytest.fixture(scope="module")
def uncond_generator():
    torch.manual_seed(1)
    return DCGANGenerator(image_size=28, latent_dim=16, num_labels=0, base_channels=8).eval()


@pytest.fixture(scope="module")
def dataset(generator, real_train):
    return SyntheticDataset(generator, 300, label_pool=real_train.targets, seed=3)


def _binomial_bound(p: np.ndarray, n: int, z: float = 4.5) -> np.ndarray:
    """|p_hat - p| bound for n Bernoulli(p) draws: z standard errors (two-sided ~7e-6 per finding)."""
    return z * np.sqrt(p * (1 - p) / n) + 1.0 / n


def test_items_match_real_items(dataset, real_train):
    real, synth = real_train[0], dataset[7]
    assert set(real) <= set(synth) and synth["synthetic"] is True
    for key in ("image", "label"):
        assert type(synth[key]) is torch.Tensor
        assert synth[key].dtype == real[key].dtype == torch.float32
        assert synth[key].shape == real[key].shape
    assert synth["image"].shape == (1, 28, 28)
    images = dataset.get_batch(np.arange(len(dataset)))["image"]
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert images.std() > 0  # not a constant image
    # labels are rows of the real subset's label matrix
    rows = {tuple(r) for r in real_train.targets.tolist()}
    assert tuple(synth["label"].tolist()) in rows


def test_items_depend_only_on_seed_and_index(generator, real_train, dataset):
    reference = [dataset[i] for i in range(len(dataset))]
    other = SyntheticDataset(generator, 300, label_pool=real_train.targets, seed=3, batch_size=1)
    order = np.random.RandomState(0).permutation(300)
    for i in order:  # another batch_size, random access order
        item = other[int(i)]
        assert torch.equal(item["image"], reference[i]["image"]) and torch.equal(
            item["label"], reference[i]["label"]
        )
    longer = SyntheticDataset(generator, 1000, label_pool=real_train.targets, seed=3, batch_size=512)
    for i in (299, 0, 150, CHUNK_SIZE, CHUNK_SIZE - 1):  # the first items do not depend on num_samples
        assert torch.equal(longer[i]["image"], reference[i]["image"])
    assert torch.equal(dataset[-1]["image"], reference[299]["image"])
    other_seed = SyntheticDataset(generator, 300, label_pool=real_train.targets, seed=4)
    assert not torch.equal(other_seed[0]["image"], reference[0]["image"])
    # get_batch equals per-item access, in any order and with repeats
    idx = [299, 3, 3, 128, 0]
    batch = dataset.get_batch(idx)
    assert torch.equal(batch["image"], torch.stack([reference[i]["image"] for i in idx]))
    assert torch.equal(batch["label"], torch.stack([reference[i]["label"] for i in idx]))
    assert batch["synthetic"].dtype == torch.bool and bool(batch["synthetic"].all())
    # a materialized copy (one contiguous tensor) and a pickled one give the same bytes
    full = SyntheticDataset(generator, 300, label_pool=real_train.targets, seed=3).materialize()
    for copy in (full, pickle.loads(pickle.dumps(full))):
        again = copy.get_batch(idx)
        assert torch.equal(again["image"], batch["image"]) and torch.equal(again["label"], batch["label"])
        assert torch.equal(copy[299]["image"], reference[299]["image"]) and len(copy._cache) == 2


def test_identical_bytes_across_workers_and_shuffling(generator, real_train):
    n = 2 * CHUNK_SIZE + 88  # three chunks, the last one partial
    ds = SyntheticDataset(generator, n, label_pool=real_train.targets, seed=11, batch_size=128)
    plain = next(iter(DataLoader(ds, batch_size=n, num_workers=0)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(5))
    fresh = SyntheticDataset(generator, n, label_pool=real_train.targets, seed=11, batch_size=1024)
    images, labels = torch.empty(n, 1, 28, 28), torch.empty(n, 14)
    loader = DataLoader(fresh, batch_size=100, sampler=perm.tolist(), num_workers=2)
    seen = 0
    for batch in loader:
        index = perm[seen : seen + len(batch["image"])]
        images[index], labels[index] = batch["image"], batch["label"]
        seen += len(batch["image"])
    assert seen == n and not fresh._cache  # generated in the workers, not here
    assert torch.equal(images, plain["image"]) and torch.equal(labels, plain["label"])
    assert plain["synthetic"].dtype == torch.bool and bool(plain["synthetic"].all())


def test_generation_is_batched_and_cached(generator, real_train):
    calls = []
    handle = generator.register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    try:
        ds = SyntheticDataset(generator, 300, label_pool=real_train.targets, batch_size=128)
        for i in range(300):
            ds[i]
        for i in reversed(range(300)):
            ds[i]
    finally:
        handle.remove()
    assert calls == [CHUNK_SIZE] * math.ceil(300 / CHUNK_SIZE)  # one forward per chunk, all cached
    small_cache = SyntheticDataset(
        generator, 4 * CHUNK_SIZE, label_pool=real_train.targets, batch_size=1, cache_bytes=1
    )
    for i in (0, 4 * CHUNK_SIZE - 1, 2 * CHUNK_SIZE, 0):
        small_cache[i]
    assert sorted(small_cache._cache) == [0, 2]  # LRU, bounded by max(block + 1, budget) chunks


def test_joint_resampling_matches_real_rates(generator, real_train):
    n = 20_000
    pool = real_train.targets
    labels = SyntheticDataset(generator, n, label_pool=pool, seed=0).targets
    p_real = (pool >= 0.5).mean(0)
    rates = labels.mean(0)
    assert np.all(np.abs(rates - p_real) <= _binomial_bound(p_real, n)), (rates, p_real)
    # joint, not independent marginals: share of "no finding" vectors and of multi-finding vectors
    for stat in (lambda m: (m.sum(1) == 0).mean(), lambda m: (m.sum(1) >= 2).mean()):
        p = stat(pool)
        assert abs(stat(labels) - p) <= _binomial_bound(np.array(p), n)
    independent = np.prod(1 - p_real)  # what independent marginals would give for "no finding"
    assert abs((pool.sum(1) == 0).mean() - independent) > 5 * _binomial_bound(np.array(independent), n)
    rows = {tuple(r) for r in pool.tolist()}
    assert all(tuple(r) in rows for r in labels[:500].tolist())


def test_balanced_sampler_raises_rare_findings(generator, real_train):
    n = 20_000
    pool = real_train.targets
    sampler = BalancedLabelSampler(pool)
    assert sampler.num_classes == 15  # 14 findings (all present in train) + "no finding"
    labels = SyntheticDataset(generator, n, label_sampler=sampler, seed=0).targets
    expected = sampler.expected_rates().numpy()
    rates = labels.mean(0)
    assert np.all(np.abs(rates - expected) <= _binomial_bound(expected, n)), (rates, expected)
    assert abs((labels.sum(1) == 0).mean() - 1 / 15) <= _binomial_bound(np.array(1 / 15), n)
    p_real = (pool >= 0.5).mean(0)
    hernia, pneumonia = 13, 6
    for j in (hernia, pneumonia):
        assert p_real[j] < 0.02 and rates[j] > 1 / 15 - _binomial_bound(np.array(1 / 15), n)
        assert rates[j] > 4 * p_real[j]
    assert np.all(expected >= 1 / 15 - 1e-12)
    # the string form on the dataset is the same sampler
    by_name = SyntheticDataset(generator, 256, label_pool=pool, label_sampler="balanced", seed=0)
    assert np.array_equal(by_name.targets, labels[:256])


def test_label_samplers_use_only_the_given_generator():
    pool = np.eye(3, dtype=np.float32)
    for sampler in (JointLabelSampler(pool), BalancedLabelSampler(pool)):
        a = sampler.sample(50, chunk_generator(1, 2))
        b = sampler.sample(50, chunk_generator(1, 2))
        assert torch.equal(a, b) and a.shape == (50, 3) and a.dtype == torch.float32
    draws = {
        (s, k): torch.randn(4, generator=chunk_generator(s, k)) for s, k in ((1, 2), (2, 1), (1, 3), (0, 0))
    }
    values = list(draws.values())
    assert all(not torch.equal(a, b) for i, a in enumerate(values) for b in values[i + 1 :])


def test_given_label_matrix_and_vector(generator):
    labels = np.zeros((100, 14), np.float32)
    labels[np.arange(100), np.arange(100) % 14] = 1
    ds = SyntheticDataset(generator, 100, labels=labels)
    assert np.array_equal(ds.targets, labels)
    assert torch.equal(ds[99]["label"], torch.from_numpy(labels[99]))
    hernia = np.zeros(14, np.float32)
    hernia[13] = 1
    only = SyntheticDataset(generator, 10, labels=hernia)
    assert all(only[i]["label"][13] == 1 and only[i]["label"].sum() == 1 for i in range(10))


def test_unconditional_generator_labels(uncond_generator):
    ds = SyntheticDataset(uncond_generator, 70)
    item = ds[69]
    assert "label" not in item and item["synthetic"] is True and item["image"].shape == (1, 28, 28)
    assert not ds.has_labels
    with pytest.raises(ValueError, match="no labels.*labeller"):
        _ = ds.targets
    with pytest.raises(ValueError, match="no labels"):
        _ = ds.num_labels

    def labeller(images):  # a deterministic "classifier": two soft labels from brightness
        m = images.mean(dim=(1, 2, 3))
        return torch.stack([m, 1 - m], 1)

    labelled = SyntheticDataset(uncond_generator, 70, labeller=labeller)
    item = labelled[69]
    assert item["label"].shape == (2,) and labelled.num_labels == 2
    assert torch.allclose(item["label"][0], item["image"].mean())
    assert torch.equal(item["image"], ds[69]["image"])
    bad = SyntheticDataset(uncond_generator, 70, labeller=lambda x: torch.zeros(3, 2))
    with pytest.raises(ValueError, match=rf"labeller must return \({CHUNK_SIZE}, L\)"):
        bad[0]


def test_bad_arguments(generator, uncond_generator, real_train):
    pool = real_train.targets
    cases = [
        (TypeError, "generator protocol", dict(generator=torch.nn.Linear(2, 2), num_samples=5)),
        (ValueError, "num_samples must be an integer >= 1, got 0", dict(num_samples=0, label_pool=pool)),
        (ValueError, "batch_size must be an integer >= 1, got -1", dict(batch_size=-1, label_pool=pool)),
        (ValueError, "seed must be an integer >= 0, got -2", dict(seed=-2, label_pool=pool)),
        (ValueError, "conditional \\(num_labels=14\\)", dict()),
        (ValueError, "label_sampler must be one of", dict(label_sampler="uniform", label_pool=pool)),
        (ValueError, "give label_pool", dict(label_sampler="balanced")),
        (
            ValueError,
            "label width mismatch.*3 labels.*num_labels=14",
            dict(label_sampler=JointLabelSampler(np.eye(3))),
        ),
        (ValueError, "labels must have shape \\(5, 14\\).*got \\(5, 3\\)", dict(labels=np.zeros((5, 3)))),
        (ValueError, "not both", dict(labels=np.zeros(14), label_pool=pool)),
        (ValueError, "values must lie in \\[0, 1\\]", dict(label_pool=pool * 2)),
        (TypeError, "label_sampler must be", dict(label_sampler=object())),
        (ValueError, "labeller is for unconditional", dict(labeller=lambda x: x, label_pool=pool)),
        (ValueError, "unconditional \\(num_labels=0\\)", dict(generator=uncond_generator, label_pool=pool)),
        (TypeError, "labeller must be callable", dict(generator=uncond_generator, labeller=3)),
    ]
    for error, message, kwargs in cases:
        args = dict(generator=generator, num_samples=5) | kwargs
        with pytest.raises(error, match=message):
            SyntheticDataset(**args)
    ds = SyntheticDataset(generator, 5, label_pool=pool)
    with pytest.raises(IndexError, match="index 5 out of range"):
        ds[5]


def _save_run(tmp_path, generator, real_train, name="run"):
    run = tmp_path / name
    run.mkdir()
    meta = {
        "label_names": real_train.label_names,
        "train_labels": real_train.labels.tolist(),
        "flag": "chestmnist",
        "task": real_train.task,
    }
    save_generator(generator, run / "generator.pt", meta=meta)
    return run


def test_from_run(tmp_path, generator, real_train):
    run = _save_run(tmp_path, generator, real_train)
    ds = SyntheticDataset.from_run(run, 128, seed=3)
    direct = SyntheticDataset(generator, 128, label_pool=real_train.targets, seed=3)
    assert torch.equal(ds[100]["image"], direct[100]["image"]) and torch.equal(
        ds[100]["label"], direct[100]["label"]
    )
    assert ds.label_names == real_train.label_names and ds.source == run / "generator.pt"
    assert isinstance(ds.label_sampler, JointLabelSampler)
    balanced = SyntheticDataset.from_run(run / "generator.pt", 128, label_sampler="balanced")
    assert isinstance(balanced.label_sampler, BalancedLabelSampler)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SyntheticDataset.from_run(tmp_path / "nope", 10)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no generator.pt"):
        SyntheticDataset.from_run(tmp_path / "empty", 10)
    bare = tmp_path / "bare.pt"
    save_generator(generator, bare, meta={})
    with pytest.raises(ValueError, match="bare.pt: generator meta has no 'train_labels'"):
        SyntheticDataset.from_run(bare, 10)
    not_a_generator = tmp_path / "x.pt"
    torch.save({"a": 1}, not_a_generator)
    with pytest.raises(ValueError, match="x.pt"):
        SyntheticDataset.from_run(not_a_generator, 10)


def test_generate_cli_writes_a_medmnist_file(tmp_path, generator, real_train, capsys):
    run = _save_run(tmp_path, generator, real_train)
    out = tmp_path / "synth.npz"
    assert (
        cli_main(["generate", "--run", str(run), "--num", "150", "--seed", "2", "--out", str(out), "--quiet"])
        == 0
    )
    read = MedMNISTDataset(path=out, split="train")
    assert len(read) == 150 and read.images.dtype == np.uint8 and read.images.shape == (150, 28, 28)
    assert read.labels.dtype == np.uint8 and read.labels.shape == (150, 14)
    assert len(MedMNISTDataset(path=out, split="test")) == 0
    ds = SyntheticDataset.from_run(run, 150, seed=2)
    expected = torch.round(ds.get_batch(range(150))["image"] * 255)
    assert torch.equal(read[0]["image"], expected[0] / 255) or torch.allclose(
        read[0]["image"], expected[0] / 255
    )
    assert np.array_equal(read.images, expected[:, 0].to(torch.uint8).numpy())
    assert np.array_equal(read.targets, ds.targets)
    before = out.read_bytes()
    assert cli_main(["generate", "--run", str(run), "--num", "10", "--out", str(out), "--quiet"]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert (
        cli_main(
            [
                "generate",
                "--run",
                str(run),
                "--num",
                "300",
                "--out",
                str(out),
                "--balanced",
                "--overwrite",
                "--quiet",
            ]
        )
        == 0
    )
    balanced = MedMNISTDataset(path=out, split="train")
    assert len(balanced) == 300 and balanced.labels[:, 13].sum() > 5  # hernia: 9/691 real, ~1/15 balanced
    assert not list(tmp_path.glob(".synth.npz.*"))  # no temporary file left
    assert cli_main(["generate", "--run", str(run), "--num", "10", "--out", str(tmp_path / "x.txt")]) == 1


def _rows(labels) -> list[tuple]:
    return sorted(map(tuple, np.asarray(labels).tolist()))


def test_shuffled_labels_keep_images_and_label_multiset_but_break_pairing(generator, real_train):
    """The placebo: byte-identical images, the same multiset of label vectors, labels moved between items."""
    paired = SyntheticDataset(generator, 600, label_pool=real_train.targets, seed=3)
    shuffled = SyntheticDataset(generator, 600, label_pool=real_train.targets, seed=3, shuffle_labels_seed=9)
    everything = np.arange(600)
    a, b = paired.get_batch(everything), shuffled.get_batch(everything)
    assert torch.equal(a["image"], b["image"])  # same images, bit for bit
    assert _rows(a["label"]) == _rows(b["label"]) == _rows(shuffled.targets)  # same label multiset
    order = np.random.default_rng(9).permutation(600)
    assert torch.equal(b["label"], a["label"][torch.from_numpy(order)])  # item i carries item perm[i]'s label
    moved = (b["label"] != a["label"]).any(1).float().mean().item()
    by_chance = 1 - sum(c**2 for c in np.unique(a["label"].numpy(), axis=0, return_counts=True)[1] / 600.0)
    assert moved > 0.5 and abs(moved - by_chance) < 0.1  # as often as two random items differ
    assert torch.equal(shuffled[5]["label"], a["label"][order[5]])  # item access agrees with batches
    # the copy from a materialized dataset shares its images and equals building it shuffled
    source = SyntheticDataset(generator, 600, label_pool=real_train.targets, seed=3).materialize()
    copy = source.with_shuffled_labels(9)
    assert copy._full["image"] is source._full["image"]  # not generated again
    assert torch.equal(copy.get_batch(everything)["image"], a["image"])
    assert torch.equal(copy.get_batch(everything)["label"], b["label"])
    assert torch.equal(source.get_batch(everything)["label"], a["label"])  # the source keeps its labels
    assert not np.array_equal(source.with_shuffled_labels(10).targets, copy.targets)  # the seed matters
    restored = pickle.loads(pickle.dumps(copy))
    assert torch.equal(restored.get_batch(everything)["label"], b["label"])


def test_shuffled_labels_of_a_labeller_and_bad_seeds(generator, uncond_generator, real_train):
    def labeller(images):
        return (images.mean((1, 2, 3)) > images.mean()).float()[:, None]

    paired = SyntheticDataset(uncond_generator, 300, labeller=labeller)
    shuffled = SyntheticDataset(uncond_generator, 300, labeller=labeller, shuffle_labels_seed=0)
    assert torch.equal(paired.get_batch(range(300))["image"], shuffled.get_batch(range(300))["image"])
    order = torch.from_numpy(np.random.default_rng(0).permutation(300))
    assert torch.equal(shuffled.get_batch(range(300))["label"], paired.get_batch(range(300))["label"][order])
    with pytest.raises(ValueError, match="shuffle_labels_seed must be an integer >= 0, got -1"):
        SyntheticDataset(generator, 10, label_pool=real_train.targets, shuffle_labels_seed=-1)
    with pytest.raises(ValueError, match="no labels"):
        SyntheticDataset(uncond_generator, 10, shuffle_labels_seed=0)
