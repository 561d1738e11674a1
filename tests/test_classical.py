"""Batch-level classical augmentation: seeded, per-item parameters, the per-item transform's family."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medgan_aug.transforms.classical import BatchClassicalAugmentation, BatchClassicalAugmentationd


def batch_of(n: int = 32, size: int = 28) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(0))


def test_same_seed_same_output_other_seed_other_output():
    images = batch_of()
    first = BatchClassicalAugmentation(seed=0)(images)
    assert torch.equal(first, BatchClassicalAugmentation(seed=0)(images))
    assert not torch.equal(first, BatchClassicalAugmentation(seed=1)(images))
    assert first.shape == images.shape and first.dtype == torch.float32
    assert 0.0 <= first.min() and first.max() <= 1.0
    d = BatchClassicalAugmentationd(seed=0)({"image": images, "label": torch.ones(32, 3)})
    assert torch.equal(d["image"], first) and torch.equal(d["label"], torch.ones(32, 3))


def test_parameters_are_drawn_per_item_within_the_per_item_transforms_ranges():
    augment = BatchClassicalAugmentation(prob=0.5, seed=0)
    augment.randomize(512)
    p = augment.params
    for key in ("angle", "gamma", "noise_std"):
        assert len(np.unique(p[key])) == 512  # one draw per item
    assert np.abs(p["angle"]).max() <= math.radians(10) and np.abs(p["shift"]).max() <= 0.05
    assert np.abs(p["zoom"] - 1).max() <= 0.1 and p["gamma"].min() >= 0.8 and p["gamma"].max() <= 1.25
    assert p["noise_std"].max() <= 0.02
    for key in ("affine", "contrast", "noise"):  # each augmentation on about half the items
        assert 0.4 < p[key].mean() < 0.6
    assert np.corrcoef(p["affine"], p["contrast"])[0, 1] < 0.2  # drawn independently


def test_items_get_different_changes_and_skipped_items_pass_unchanged():
    images = batch_of(64)
    augment = BatchClassicalAugmentation(prob=0.5, seed=4)
    out = augment(images)
    touched = augment.params["affine"] | augment.params["contrast"] | augment.params["noise"]
    assert torch.equal(out[torch.from_numpy(~touched)], images[torch.from_numpy(~touched)])
    changes = (out - images)[torch.from_numpy(touched)].flatten(1)
    assert len({tuple(c[:20].tolist()) for c in changes}) == int(touched.sum())


def test_the_affine_moves_pixels_as_its_parameters_say():
    """A pure translation of 2 px to the right (shift 1/14 of a 28 px side) moves a bright column by 2 px."""
    image = torch.zeros(1, 1, 28, 28)
    image[..., 10] = 1.0
    augment = BatchClassicalAugmentation(prob=1.0, noise_std=0.0, gamma_range=(1.0, 1.0))
    augment.set_random_state(seed=0)
    augment.randomize(1)
    augment.params.update(angle=np.zeros(1), zoom=np.ones((1, 2)), shift=np.array([[-2 / 28, 0.0]]))
    moved = augment.apply(image)
    assert int(moved[0, 0, 14].argmax()) == 12 and float(moved[0, 0, 14, 12]) == pytest.approx(1.0, abs=1e-5)
    augment.params.update(shift=np.zeros((1, 2)), angle=np.array([math.pi / 2]))  # a quarter turn
    turned = augment.apply(image)
    assert float(turned[0, 0].sum(1).max()) == pytest.approx(28.0, abs=1e-4)  # the column became a row
    assert torch.allclose(turned[0, 0].sum(0), torch.ones(28), atol=1e-4)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"prob must be in \[0, 1\], got 2"):
        BatchClassicalAugmentation(prob=2)
    with pytest.raises(ValueError, match="scale_fraction must be < 1"):
        BatchClassicalAugmentation(scale_fraction=1.5)
    with pytest.raises(ValueError, match="gamma_range must be"):
        BatchClassicalAugmentation(gamma_range=(1.2, 0.9))
    with pytest.raises(ValueError, match=r"images must be a \(B, C, H, W\) batch, got shape \(28, 28\)"):
        BatchClassicalAugmentation(seed=0)(torch.zeros(28, 28))
    with pytest.raises(ValueError, match=r"batch lacks key\(s\) \['image'\]"):
        BatchClassicalAugmentationd(seed=0)({"label": torch.zeros(2, 3)})
