"""Classical per-item augmentation for chest X-rays, built from MONAI dict transforms."""

from __future__ import annotations

import math

import numpy as np
import torch
from monai.transforms import (
    Compose,
    EnsureTyped,
    RandAdjustContrastd,
    RandAffined,
    RandGaussianNoised,
    ScaleIntensityRanged,
)

__all__ = ["classical_augmentation"]


def classical_augmentation(
    image_size: int,
    *,
    prob: float = 0.5,
    rotate_degrees: float = 10.0,
    translate_fraction: float = 0.05,
    scale_fraction: float = 0.1,
    noise_std: float = 0.02,
    gamma_range: tuple[float, float] = (0.8, 1.25),
    keys: str = "image",
    seed: int | None = None,
) -> Compose:
    """Classical per-item augmentation for chest X-rays (MONAI dict transforms on ``"image"``).

    Random affine (rotation within ±``rotate_degrees``, translation within ±``translate_fraction`` of the
    side, per-axis scaling within ±``scale_fraction``), Gaussian noise, and a random gamma contrast
    change, each applied with probability ``prob``; the result is clipped to [0, 1] and returned as a
    plain float32 tensor of the input shape.

    There is deliberately NO left-right flip: chest radiographs are not left-right symmetric (the heart
    lies on the patient's left, the aortic arch and stomach bubble too, the liver on the right), so a
    mirrored film is an anatomically impossible image (situs inversus aside) and teaches the classifier
    a wrong anatomy, e.g. for cardiomegaly. Vertical flips and 90° rotations are excluded for the same
    reason.

    Args:
        image_size: image side in pixels (sets translation in pixels).
        prob: probability of each of the three random transforms.
        rotate_degrees: maximal absolute rotation.
        translate_fraction: maximal absolute translation as a fraction of ``image_size``.
        scale_fraction: maximal relative zoom in or out.
        noise_std: standard deviation of the additive Gaussian noise (intensities in [0, 1]).
        gamma_range: range of the contrast gamma.
        keys: dict key(s) of the image.
        seed: if given, seeds all random transforms (MONAI ``set_random_state``). ``train_classifier``
            re-seeds dataset transforms from its own seed anyway.

    Returns:
        A MONAI ``Compose``.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob!r}")
    for arg, value in (
        ("rotate_degrees", rotate_degrees),
        ("translate_fraction", translate_fraction),
        ("scale_fraction", scale_fraction),
        ("noise_std", noise_std),
    ):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{arg} must be a finite number >= 0, got {value!r}")
    if len(gamma_range) != 2 or not 0 < gamma_range[0] <= gamma_range[1]:
        raise ValueError(f"gamma_range must be (low, high) with 0 < low <= high, got {gamma_range!r}")
    shift = translate_fraction * image_size
    transform = Compose(
        [
            RandAffined(
                keys=keys,
                prob=prob,
                rotate_range=(math.radians(rotate_degrees),),
                translate_range=(shift, shift),
                scale_range=(scale_fraction, scale_fraction),
                mode="bilinear",
                padding_mode="border",
            ),
            RandAdjustContrastd(keys=keys, prob=prob, gamma=tuple(gamma_range)),
            RandGaussianNoised(keys=keys, prob=prob, mean=0.0, std=noise_std),
            ScaleIntensityRanged(keys=keys, a_min=0.0, a_max=1.0, b_min=0.0, b_max=1.0, clip=True),
            EnsureTyped(keys=keys, data_type="tensor", dtype=torch.float32, track_meta=False),
        ]
    )
    if seed is not None:
        transform.set_random_state(seed=int(seed))
    return transform
