"""Generator evaluation: distances with floors, precision/recall, conditional AUC, memorization audit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medgan_aug.apps.extractor_fit import fit_feature_extractor, load_or_fit_extractor
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.engines.classifier_trainer import train_classifier
from medgan_aug.metrics.extractor import (
    EXTRACTOR_VERSION,
    conditional_fidelity,
    data_fingerprint,
    extractor_features,
    validation_auc,
    weights_fingerprint,
)
from medgan_aug.metrics.generative import (
    density_coverage,
    distribution_metrics,
    frechet_distance,
    kernel_distance,
    precision_recall,
)
from medgan_aug.metrics.memorization import memorization_audit, nearest_neighbours
from medgan_aug.networks.classifiers import build_classifier
from medgan_aug.networks.model_file import load_classifier, save_classifier


def _images(ds: MedMNISTDataset) -> torch.Tensor:
    return torch.from_numpy(ds.images).float().div(255.0)[:, None]


@pytest.fixture(scope="module")
def splits(chest28_path):
    return {s: MedMNISTDataset(path=chest28_path, split=s) for s in ("train", "val", "test")}


@pytest.fixture(scope="module")
def extractor(splits, tmp_path_factory):
    """A feature extractor trained for 30 iterations: the tests that take it are marked slow."""
    path = tmp_path_factory.mktemp("extractor") / "extractor.pt"
    model, meta = fit_feature_extractor(
        splits["train"], splits["val"], path, iterations=30, eval_every=10, seed=0
    )
    return model, meta, path


# ------------------------------------------------------------------------------------ distances
def test_identical_sets_have_zero_frechet_distance():
    x = np.random.default_rng(0).normal(size=(400, 16))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    # two independent samples of one distribution: KID ~ 0 (unbiased), far below a shifted sample's
    y = np.random.default_rng(1).normal(size=(400, 16))
    same, _ = kernel_distance(x, y, num_subsets=10)
    shifted, _ = kernel_distance(x, y + 1.0, num_subsets=10)
    assert abs(same) < 0.02 and shifted > 50 * abs(same)


def test_frechet_distance_matches_closed_form():
    # b = 2a + 3: mean mu_b = 2 mu_a + 3 and covariance 4 S_a, so
    # FD = ||mu_a + 3||^2 + Tr(S_a + 4 S_a - 2 * 2 S_a) = ||mu_a + 3||^2 + Tr(S_a), exactly.
    a = np.random.default_rng(2).normal(size=(300, 8)) @ np.diag(np.arange(1.0, 9.0))
    b = 2 * a + 3
    expected = np.sum((a.mean(0) + 3) ** 2) + np.trace(np.cov(a.T))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_kernel_distance_is_the_unbiased_polynomial_mmd():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 5)), rng.normal(0.5, 1.0, size=(40, 5))
    k = lambda a, b: (a @ b.T / 5 + 1) ** 3  # noqa: E731
    m = 30  # one subset of min(30, 40) rows; x is used whole (a permutation), y subsampled
    mean, std = kernel_distance(x, y, subset_size=1000, num_subsets=1, seed=0)
    idx = np.random.default_rng(0)
    ia, ib = idx.choice(30, m, replace=False), idx.choice(40, m, replace=False)
    xs, ys = x[ia], y[ib]
    kxx, kyy, kxy = k(xs, xs), k(ys, ys), k(xs, ys)
    ref = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
    assert mean == pytest.approx(ref, rel=1e-10) and std == 0.0


def test_shifted_set_is_farther_than_the_real_floor():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(600, 12))
    same = rng.normal(size=(300, 12))
    shifted = rng.normal(size=(300, 12)) + 0.6
    far = distribution_metrics(real, shifted, repeats=3, seed=0)
    near = distribution_metrics(real, same, repeats=3, seed=0)
    assert far["n"] == near["n"] == 300
    for key in ("frechet_distance", "kid"):
        m = far[key]
        assert m["value"] > m["floor"] + 10 * max(m["floor_std"], 1e-3), key
        # a sample of the real distribution sits at the floor
        assert abs(near[key]["value"] - near[key]["floor"]) < 5 * max(near[key]["floor_std"], 0.02), key
    assert far["precision"]["value"] < far["precision"]["floor"] - 0.2
    assert far["coverage"]["value"] < far["coverage"]["floor"] - 0.2


def test_precision_recall_density_coverage_extremes():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(200, 6))
    pr = precision_recall(real, real.copy())
    assert pr == {"precision": 1.0, "recall": 1.0}
    assert density_coverage(real, real.copy())["coverage"] == 1.0
    far = real + 100.0
    assert precision_recall(real, far) == {"precision": 0.0, "recall": 0.0}
    assert density_coverage(real, far) == {"density": 0.0, "coverage": 0.0}
    # half the fakes on the real data, half far away: precision 1/2, recall stays high
    mixed = np.concatenate([real[:100], far[100:]])
    assert precision_recall(real, mixed)["precision"] == pytest.approx(0.5)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="features_a has 4 features per row but features_b has 3"):
        frechet_distance(np.zeros((5, 4)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        kernel_distance(np.zeros(5), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="too few samples"):
        distribution_metrics(np.zeros((8, 2)), np.zeros((8, 2)))
    with pytest.raises(ValueError, match="percentile"):
        memorization_audit(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3)), percentile=0)


# ---------------------------------------------------------------------------- feature extractor
@pytest.mark.slow
def test_extractor_is_saved_and_reused(extractor, splits):
    model, meta, path = extractor
    assert meta["data_sha256"] == data_fingerprint(splits["train"].images, splits["train"].labels)
    assert meta["max_iterations"] == 30 and meta["image_size"] == 28 and meta["version"] == EXTRACTOR_VERSION
    assert meta["val_sha256"] == data_fingerprint(splits["val"].images, splits["val"].labels)
    loaded, loaded_meta, fitted = load_or_fit_extractor(path, splits["train"], splits["val"])
    assert fitted is False and loaded_meta == meta
    assert weights_fingerprint(loaded) == weights_fingerprint(model)
    # the same training again gives the same weights: numbers are reproducible, not only reusable
    again, _ = fit_feature_extractor(splits["train"], splits["val"], iterations=30, eval_every=10, seed=0)
    assert weights_fingerprint(again) == weights_fingerprint(model)
    x = _images(splits["test"])[:50]
    np.testing.assert_array_equal(extractor_features(model, x), extractor_features(loaded, x))
    # other data with the same layout: usable, with a warning naming the file
    other = MedMNISTDataset(path=splits["train"].source, split="train", indices=np.arange(100))
    with pytest.warns(UserWarning, match="trained on other data"):
        load_or_fit_extractor(path, other, splits["val"])


@pytest.mark.slow
def test_extractor_that_does_not_fit_the_data_is_refused(extractor, pneumonia_path):
    _, _, path = extractor
    pneumonia = {
        s: MedMNISTDataset(flag="pneumoniamnist", path=pneumonia_path, split=s) for s in ("train", "val")
    }
    with pytest.raises(ValueError, match="num_outputs: file 14 vs data 1"):
        load_or_fit_extractor(path, pneumonia["train"], pneumonia["val"])


@pytest.mark.slow
def test_features_reject_generator_range(extractor):
    model, _, _ = extractor
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        extractor_features(model, torch.full((2, 1, 28, 28), -1.0))


@pytest.mark.slow
def test_random_noise_generator_has_low_precision(extractor, splits):
    model, _, _ = extractor
    real = extractor_features(model, _images(splits["train"]))
    noise = torch.rand(400, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    result = distribution_metrics(real, extractor_features(model, noise), repeats=2, seed=0)
    assert result["precision"]["floor"] > 0.5
    assert result["precision"]["value"] < 0.05
    assert result["frechet_distance"]["value"] > 10 * result["frechet_distance"]["floor"]
    # held-out real images, unlike noise, sit near the floor
    held = extractor_features(model, _images(splits["test"]))
    ok = distribution_metrics(real, held, repeats=2, seed=0)
    assert ok["precision"]["value"] > 0.5


# --------------------------------------------------------------------------- conditional fidelity
class _LabelReader(nn.Module):
    """A "classifier" that reads label j from pixel (0, j): lets the AUC plumbing be checked exactly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 20.0 * (x[:, 0, 0, :3] - 0.5)


def test_conditional_fidelity_is_auc_against_generation_labels():
    rng = np.random.default_rng(6)
    labels = (rng.random((200, 3)) < 0.4).astype(np.float32)
    images = torch.full((200, 1, 8, 8), 0.5)
    images[:, 0, 0, :3] = torch.from_numpy(0.3 + 0.4 * labels)  # label visible in the image
    good = conditional_fidelity(_LabelReader(), images, labels, label_names=["a", "b", "c"])
    assert good["auc"] == pytest.approx(1.0) and set(good["auc_per_label"]) == {"a", "b", "c"}
    ignored = conditional_fidelity(_LabelReader(), images, rng.permutation(labels))
    assert abs(ignored["auc"] - 0.5) < 0.1


# --------------------------------------------------------------------------------- memorization
class _VerbatimGenerator(nn.Module):
    """A 'generator' that returns training images verbatim (picked by the noise), in G's [-1, 1] range."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("bank", images * 2.0 - 1.0)
        self.image_size, self.latent_dim, self.num_labels, self.out_channels = images.shape[-1], 8, 0, 1

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        index = (z[:, 0].abs() * 1e4).long() % self.bank.shape[0]
        return self.bank[index]


@pytest.mark.slow
def test_verbatim_generator_is_flagged_by_memorization_audit(splits, extractor):
    train, val, test = (_images(splits[s]) for s in ("train", "val", "test"))
    synthetic = SyntheticDataset(_VerbatimGenerator(train), 300, seed=0)
    fake = synthetic.get_batch(np.arange(300))["image"]
    audit = memorization_audit(fake, train, torch.cat([val, test]))
    assert audit.share_flagged >= 0.99
    assert audit.heldout_share_flagged == pytest.approx(0.01, abs=0.01)
    summary = audit.summary()
    assert summary["n_exact_copies"] >= 297 and summary["synthetic_nn"]["median"] < 1e-6
    assert summary["closest"][0]["distance"] < 1e-6
    # the closest pairs really are the same images
    pair = summary["closest"][0]
    assert torch.allclose(fake[pair["synthetic_index"]], train[pair["train_index"]], atol=1e-6)
    # feature space flags it too
    model, _, _ = extractor
    f_audit = memorization_audit(
        extractor_features(model, fake),
        extractor_features(model, train),
        extractor_features(model, torch.cat([val, test])),
        space="feature",
    )
    assert f_audit.share_flagged >= 0.99


def test_new_real_images_are_not_flagged(splits):
    train, val, test = (_images(splits[s]) for s in ("train", "val", "test"))
    audit = memorization_audit(val, train, test)  # unseen real images standing in for a generator
    assert audit.share_flagged < 0.06
    assert 0.5 < audit.summary()["median_ratio_synthetic_to_heldout"] < 1.5


def test_nearest_neighbours_exact():
    ref = torch.rand(50, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    d, i = nearest_neighbours(ref[[7, 3, 3]], ref)
    np.testing.assert_array_equal(i, [7, 3, 3])
    np.testing.assert_array_equal(d, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="values per row"):
        nearest_neighbours(np.zeros((2, 3)), np.zeros((2, 4)))


def test_frechet_from_moments_gives_monais_numbers():
    """Same steps as monai.metrics.fid.compute_frechet_distance (whose sqrtm call breaks on scipy >= 1.18)."""
    import scipy
    from monai.metrics.fid import compute_frechet_distance

    from medgan_aug.metrics.generative import frechet_from_moments

    g = torch.Generator().manual_seed(0)
    a, b = (
        torch.randn(200, 6, generator=g, dtype=torch.float64),
        torch.randn(300, 6, generator=g, dtype=torch.float64),
    )
    b = b @ torch.randn(6, 6, generator=g, dtype=torch.float64) + 0.5
    mu_a, mu_b, cov_a, cov_b = a.mean(0), b.mean(0), torch.cov(a.T), torch.cov(b.T)
    ours = frechet_from_moments(mu_a, cov_a, mu_b, cov_b)
    # closed form for commuting check: identical moments give 0
    assert frechet_from_moments(mu_a, cov_a, mu_a, cov_a) == pytest.approx(0.0, abs=1e-9)
    if tuple(int(x) for x in scipy.__version__.split(".")[:2]) < (1, 18):
        assert ours == float(compute_frechet_distance(mu_a, cov_a, mu_b, cov_b))


# ------------------------------------------------------------------ extractor selection on val
@pytest.mark.slow
def test_extractor_is_the_best_validation_state_of_one_training_run(splits):
    """Selection keeps the state with the highest val AUC; those weights are exactly a run stopped there."""
    model, meta = fit_feature_extractor(
        splits["train"], splits["val"], iterations=60, eval_every=20, patience=None
    )
    history = meta["selection"]["history"]
    assert [it for it, _ in history] == [20, 40, 60] and meta["selection"]["split"] == "val"
    best_it, best_auc = max(history, key=lambda h: h[1])
    assert meta["train_iterations"] == best_it and meta["selection"]["best_score"] == best_auc
    assert validation_auc(model, splits["val"]) == pytest.approx(best_auc, abs=1e-12)
    # the evaluations change nothing in the trajectory: a plain run of best_it steps has the same weights
    plain = build_classifier("small_cnn", 1, 14, 28, seed=0)
    train_classifier(plain, splits["train"], task=splits["train"].task, iterations=best_it, seed=0)
    assert weights_fingerprint(plain) == weights_fingerprint(model)


def test_selection_never_reads_the_test_split(splits, monkeypatch):
    with pytest.raises(ValueError, match="validation dataset is the test split"):
        fit_feature_extractor(splits["train"], splits["test"], iterations=5)
    with pytest.raises(ValueError, match="training dataset is the test split"):
        fit_feature_extractor(splits["test"], splits["val"], iterations=5)
    # a fit on train/val touches no item of the test split (tripwire on every item read)
    original = MedMNISTDataset.__getitem__

    def tripwire(self, index):
        if self.split == "test":
            raise AssertionError("the test split was read during fitting")
        return original(self, index)

    monkeypatch.setattr(MedMNISTDataset, "__getitem__", tripwire)
    fit_feature_extractor(splits["train"], splits["val"], iterations=10, eval_every=5)


@pytest.mark.slow
def test_older_extractor_files_are_flagged(extractor, splits, tmp_path):
    model, meta, _ = extractor
    old = {k: v for k, v in meta.items() if k not in ("version", "selection", "val_sha256")}
    path = save_classifier(model, tmp_path / "v1.pt", old)
    with pytest.warns(UserWarning, match="v1 \\(unversioned\\), not v2"):
        _, loaded_meta, fitted = load_or_fit_extractor(path, splits["train"], splits["val"])
    assert fitted is False and "version" not in loaded_meta
    assert load_classifier(path)[1] == old


# ------------------------------------------------------------------------ prdc cross-check
@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_recall_density_coverage_agree_with_prdc(k):
    """Our k-NN metrics against the authors' package (Naeem et al., ICML 2020, ``prdc``) on random features."""
    prdc = pytest.importorskip("prdc")
    rng = np.random.default_rng(10 + k)
    real = rng.normal(size=(300, 16))
    fake = rng.normal(0.3, 1.2, size=(250, 16))
    theirs = prdc.compute_prdc(real, fake, nearest_k=k)
    ours = {**precision_recall(real, fake, k=k), **density_coverage(real, fake, k=k)}
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-6), key
    assert 0.05 < ours["precision"] < 0.95 and 0.05 < ours["coverage"] < 0.95  # not a trivial 0/1 case


def test_prdc_differs_only_on_ball_boundaries():
    """prdc tests ``d < radius`` (open balls); we follow Kynkäänniemi et al. 2019, ``d <= radius`` (closed).

    With 1-D real points 0..4 and k=1 every real radius is exactly 1. The fake point 5.0 lies on the
    boundary of real point 4's ball: inside for us, outside for prdc. With prdc's radii nudged up by one
    ulp (``nextafter``) its ``<`` is our ``<=`` and all four numbers agree exactly.
    """
    prdc = pytest.importorskip("prdc")
    real = np.arange(5.0)[:, None]
    fake = np.array([[5.0], [10.0], [20.0]])
    theirs = prdc.compute_prdc(real, fake, nearest_k=1)
    ours = {**precision_recall(real, fake, k=1), **density_coverage(real, fake, k=1)}
    assert theirs["precision"] == 0.0 and ours["precision"] == pytest.approx(1 / 3)
    assert theirs["density"] == 0.0 and ours["density"] == pytest.approx(1 / 3)
    assert theirs["coverage"] == 0.0 and ours["coverage"] == pytest.approx(1 / 5)
    radii = prdc.prdc.compute_nearest_neighbour_distances
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            prdc.prdc, "compute_nearest_neighbour_distances", lambda x, k: np.nextafter(radii(x, k), np.inf)
        )
        closed = prdc.compute_prdc(real, fake, nearest_k=1)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(closed[key]), abs=1e-12), key
