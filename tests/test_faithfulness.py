"""Label faithfulness: ~0 for a generator that ignores its labels, large for one that draws them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medgan_aug.engines.classifier_trainer import train_classifier
from medgan_aug.metrics.faithfulness import label_faithfulness, real_label_separation
from medgan_aug.networks.classifiers import build_classifier
from medgan_aug.networks.dcgan import DCGANGenerator, to_unit_range

SIZE, LABELS = 16, 3


def _region(k: int) -> tuple[slice, slice]:
    """Finding k's 4x4 square, along the diagonal."""
    return slice(4 * k + 2, 4 * k + 6), slice(4 * k + 2, 4 * k + 6)


class _PaintingGenerator(nn.Module):
    """Generator protocol: noise texture in [-1, -0.2]; a bright square in region k when label k is on.

    ``draws`` lists the findings it draws; the others it ignores (``draws=()``: ignores every label).
    """

    image_size, latent_dim, num_labels, out_channels = SIZE, 8, LABELS, 1

    def __init__(self, draws: tuple[int, ...] = tuple(range(LABELS))) -> None:
        super().__init__()
        self.draws = draws
        self.texture = nn.Linear(self.latent_dim, SIZE * SIZE, bias=False)
        with torch.no_grad():
            self.texture.weight.copy_(
                torch.randn(SIZE * SIZE, self.latent_dim, generator=torch.Generator().manual_seed(0))
            )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = -0.6 + 0.4 * torch.tanh(self.texture(z)).view(-1, 1, SIZE, SIZE)
        for k in self.draws:
            rows, cols = _region(k)
            on = labels[:, k].view(-1, 1, 1)
            x[:, 0, rows, cols] = torch.where(
                on > 0.5, torch.ones_like(x[:, 0, rows, cols]), x[:, 0, rows, cols]
            )
        return x


class _RegionReader(nn.Module):
    """A "classifier" whose logit k is the brightness of region k (images in [0, 1])."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        means = [x[:, 0, r, c].mean(dim=(1, 2)) for r, c in map(_region, range(LABELS))]
        return 12.0 * (torch.stack(means, dim=1) - 0.5)


def test_faithful_generator_moves_the_score_and_separates_on_from_off():
    result = label_faithfulness(
        _PaintingGenerator(), _RegionReader(), num_samples=200, label_names=["a", "b", "c"]
    )
    assert result["n"] == 200 and set(result["per_label"]) == {"a", "b", "c"}
    for entry in result["per_label"].values():
        # on: region = 1 -> logit 6 -> 0.998; off: region in [0, 0.4] -> score below 0.3
        assert entry["shift"] > 0.5 and entry["auc"] > 0.95
    assert result["mean_shift"] > 0.7 and result["mean_auc"] == pytest.approx(1.0)


def test_generator_that_ignores_its_labels_scores_zero_shift_and_chance_auc():
    result = label_faithfulness(_PaintingGenerator(draws=()), _RegionReader(), num_samples=200)
    for entry in result["per_label"].values():
        # same noise, labels ignored: the paired images are identical, so exactly 0 and exactly 0.5
        assert entry["shift"] == 0.0 and entry["shift_std"] == 0.0 and entry["auc"] == 0.5
    assert abs(result["mean_shift"]) < 0.05 and abs(result["mean_auc"] - 0.5) < 0.1


def test_each_finding_is_measured_on_its_own():
    # draws finding 1 only; base vectors with every finding on: switching 0 or 2 changes nothing
    base = np.ones((100, LABELS))
    result = label_faithfulness(
        _PaintingGenerator(draws=(1,)), _RegionReader(), num_samples=100, base_labels=base
    )
    shifts = {k: v["shift"] for k, v in result["per_label"].items()}
    aucs = {k: v["auc"] for k, v in result["per_label"].items()}
    assert shifts["0"] == 0.0 and shifts["2"] == 0.0 and shifts["1"] > 0.5
    assert aucs == {"0": 0.5, "1": 1.0, "2": 0.5}
    assert result["mean_shift"] == pytest.approx(shifts["1"] / 3)


@pytest.mark.slow
def test_a_briefly_trained_classifier_reads_the_faithful_generator():
    """A SmallCNN trained 150 steps on the painting generator's images (random labels) as the classifier."""
    gen = _PaintingGenerator()
    rng = torch.Generator().manual_seed(1)
    labels = (torch.rand(512, LABELS, generator=rng) < 0.5).float()
    with torch.no_grad():
        images = (gen(torch.randn(512, gen.latent_dim, generator=rng), labels) + 1) / 2
    data = [{"image": images[i], "label": labels[i]} for i in range(512)]
    clf = build_classifier("small_cnn", 1, LABELS, SIZE, seed=0)
    train_classifier(clf, data, task="multi-label, binary-class", iterations=150, batch_size=64, seed=0)
    faithful = label_faithfulness(gen, clf, num_samples=128, seed=5)
    ignoring = label_faithfulness(_PaintingGenerator(draws=()), clf, num_samples=128, seed=5)
    assert faithful["mean_shift"] > 0.5 and faithful["mean_auc"] > 0.95
    assert ignoring["mean_shift"] == 0.0 and ignoring["mean_auc"] == 0.5
    assert not clf.training  # modes are restored (train_classifier left it in eval mode)


def test_real_generator_runs_and_modes_are_restored():
    gen = DCGANGenerator(image_size=28, latent_dim=16, num_labels=2, base_channels=8).train()
    clf = build_classifier("small_cnn", 1, 2, 28, seed=0).train()
    result = label_faithfulness(gen, clf, num_samples=8)
    assert set(result["per_label"]) == {"0", "1"} and all(
        0 <= v["auc"] <= 1 for v in result["per_label"].values()
    )
    assert gen.training and clf.training
    again = label_faithfulness(gen, clf, num_samples=8)
    assert again == result  # fixed noise from the seed: deterministic


def test_binary_flag_names_its_positive_class():
    gen = DCGANGenerator(image_size=28, latent_dim=16, num_labels=1, base_channels=8)
    clf = build_classifier("small_cnn", 1, 1, 28, seed=0)
    result = label_faithfulness(
        gen, clf, num_samples=8, task="binary-class", label_names=["normal", "pneumonia"]
    )
    assert list(result["per_label"]) == ["pneumonia"]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="one-hot classes"):
        label_faithfulness(_PaintingGenerator(), _RegionReader(), task="multi-class")
    with pytest.raises(ValueError, match=r"base_labels must be \(10, 3\)"):
        label_faithfulness(
            _PaintingGenerator(), _RegionReader(), num_samples=10, base_labels=np.zeros((5, 3))
        )
    unconditional = DCGANGenerator(image_size=28, latent_dim=16, num_labels=0, base_channels=8)
    with pytest.raises(ValueError, match="unconditional"):
        label_faithfulness(unconditional, _RegionReader())
    with pytest.raises(TypeError, match="generator protocol"):
        label_faithfulness(nn.Identity(), _RegionReader())


class _PixelScores(nn.Module):
    """A "classifier" whose score k is pixel (0, k) of the image: logit = log(p / (1 - p))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x[:, 0, 0, :LABELS].clamp(1e-6, 1 - 1e-6)
        return torch.log(p / (1 - p))


def test_real_label_separation_exact_values():
    scores = np.array([[0.9, 0.2, 0.5], [0.7, 0.4, 0.5], [0.1, 0.6, 0.5], [0.3, 0.8, 0.5]])
    labels = np.array([[1, 0, 1], [1, 1, 1], [0, 0, 1], [0, 1, 1]])
    images = torch.zeros(4, 1, 2, LABELS)
    images[:, 0, 0, :] = torch.tensor(scores, dtype=torch.float32)
    result = real_label_separation(_PixelScores(), images, labels, label_names=["a", "b", "c"])
    a, b = result["per_label"]["a"], result["per_label"]["b"]
    assert a["shift"] == pytest.approx((0.9 + 0.7) / 2 - (0.1 + 0.3) / 2, abs=1e-6)  # 0.6
    assert a["auc"] == pytest.approx(1.0) and a["n_positive"] == 2
    assert b["shift"] == pytest.approx((0.4 + 0.8) / 2 - (0.2 + 0.6) / 2, abs=1e-6)  # 0.2
    assert b["auc"] == pytest.approx(0.75)  # pairs (0.4>0.2, 0.4<0.6, 0.8>0.2, 0.8>0.6): 3 of 4
    assert result["skipped"] == ["c"]  # every image has c: no separation to measure
    assert result["mean_shift"] == pytest.approx(0.4, abs=1e-6) and result["mean_auc"] == pytest.approx(0.875)


def test_real_label_separation_matches_what_a_faithful_generator_shows():
    """Images that show their findings separate like the faithful generator's on/off pairs; images that
    ignore them separate by nothing."""
    rng = torch.Generator().manual_seed(1)
    z = torch.randn(400, 8, generator=rng)
    labels = (torch.rand(400, LABELS, generator=rng) < 0.4).float()
    shows = to_unit_range(_PaintingGenerator()(z, labels))
    hides = to_unit_range(_PaintingGenerator(draws=())(z, labels))
    seen = real_label_separation(_RegionReader(), shows, labels)
    unseen = real_label_separation(_RegionReader(), hides, labels)
    assert seen["mean_shift"] > 0.7 and seen["mean_auc"] == pytest.approx(1.0)
    assert abs(unseen["mean_shift"]) < 0.05 and abs(unseen["mean_auc"] - 0.5) < 0.1


def test_real_label_separation_bad_inputs_are_named():
    images = torch.zeros(4, 1, 2, LABELS)
    with pytest.raises(ValueError, match="labels must be"):
        real_label_separation(_PixelScores(), images, np.zeros((3, LABELS)))
    with pytest.raises(ValueError, match="one-hot"):
        real_label_separation(_PixelScores(), images, np.zeros((4, LABELS)), task="multi-class")
    with pytest.raises(ValueError, match="3 scores per image for 2 labels"):
        real_label_separation(_PixelScores(), images, np.zeros((4, 2)))
