"""MixUp and CutMix on classification batches (MONAI's transforms, targets mixed by the same weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan_aug.transforms.regularization import CutMixBatchd, MixUpBatchd, cutmix_kept_share


def distinct_batch(batch: int = 16, size: int = 12, labels: int = 5) -> dict[str, torch.Tensor]:
    """Item b is the constant image b + 1 (so every pixel says where it came from); random soft targets."""
    images = (torch.arange(batch, dtype=torch.float32) + 1)[:, None, None, None].expand(batch, 1, size, size)
    generator = torch.Generator().manual_seed(0)
    return {"image": images.contiguous(), "label": torch.rand(batch, labels, generator=generator), "id": 7}


def test_mixup_mixes_images_and_targets_with_the_same_weights():
    batch = distinct_batch()
    mix = MixUpBatchd().set_random_state(seed=3)
    out = mix(batch)
    lam, perm, _ = mix.params
    lam = lam.double()
    own, partner = batch["image"][:, 0, 0, 0].double(), batch["image"][perm, 0, 0, 0].double()
    # every pixel of item b is lam_b * own + (1 - lam_b) * partner: solve for lam from the image
    moved = perm != np.arange(16)
    seen = (out["image"][:, 0, 0, 0].double() - partner) / (own - partner)
    assert torch.allclose(seen[torch.from_numpy(moved)], lam[torch.from_numpy(moved)], atol=1e-5)
    expected = lam[:, None].float() * batch["label"] + (1 - lam[:, None].float()) * batch["label"][perm]
    assert torch.allclose(out["label"], expected, atol=1e-6)
    assert out["id"] == 7  # other entries pass through
    assert 0 < lam.min() and lam.max() < 1 and len(set(lam.tolist())) == 16  # per-item weights


def test_cutmix_targets_follow_the_pixels_each_item_keeps():
    batch = distinct_batch(batch=32)
    mix = CutMixBatchd().set_random_state(seed=5)
    out = mix(batch)
    _, perm, corner = mix.params
    kept = (out["image"] == batch["image"]).double().flatten(1).mean(1)
    weight = cutmix_kept_share(mix.params[0], [int(c) for c in corner], (12, 12)).double()
    moved = torch.from_numpy(perm != np.arange(32))
    assert torch.allclose(kept[moved], weight[moved], atol=1e-6)  # what was pasted, border clipping included
    assert (weight[moved] < 1).any()  # some boxes were pasted
    pasted = out["image"] != batch["image"]
    assert torch.equal(out["image"][pasted], batch["image"][perm].expand_as(batch["image"])[pasted])
    w = weight.float()[:, None]
    assert torch.allclose(out["label"], w * batch["label"] + (1 - w) * batch["label"][perm], atol=1e-6)
    # MONAI's own CutMix label path would have swapped whole rows instead of mixing them
    assert not torch.allclose(out["label"][moved], batch["label"][perm][moved])


@pytest.mark.parametrize("cls", [MixUpBatchd, CutMixBatchd])
def test_mixers_are_seeded(cls):
    batch = distinct_batch()
    first = cls().set_random_state(seed=1)(batch)
    again = cls().set_random_state(seed=1)(batch)
    other = cls().set_random_state(seed=2)(batch)
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["label"], again["label"])
    assert not torch.equal(first["label"], other["label"])


def test_mixer_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"alpha must be a finite number > 0.*got 0"):
        MixUpBatchd(alpha=0)
    with pytest.raises(ValueError, match=r"keys must be \(image_key, label_key\)"):
        CutMixBatchd(keys="image")
    with pytest.raises(ValueError, match=r"batch lacks key\(s\) \['label'\]"):
        MixUpBatchd()({"image": torch.zeros(2, 1, 4, 4)})
    with pytest.raises(ValueError, match=r"batch\['label'\] must be \(2, L\) targets, got shape \(3, 5\)"):
        MixUpBatchd()({"image": torch.zeros(2, 1, 4, 4), "label": torch.zeros(3, 5)})
    with pytest.raises(TypeError, match=r"batch\['image'\] must be floating point"):
        CutMixBatchd()({"image": torch.zeros(2, 1, 4, 4, dtype=torch.uint8), "label": torch.zeros(2, 5)})
