"""Classical augmentation for chest X-rays: a small random affine, gamma contrast and Gaussian noise.

Two forms of the same family, with the same parameter ranges:

* :func:`classical_augmentation`: per item, a MONAI ``Compose`` of dict transforms (``RandAffined``,
  ``RandAdjustContrastd``, ``RandGaussianNoised``) for a dataset's ``transform``;
* :class:`BatchClassicalAugmentation` / :class:`BatchClassicalAugmentationd`: on a collated batch
  tensor, with every item's parameters drawn per item from ``self.R`` but applied in one
  ``affine_grid``/``grid_sample`` call and vectorised contrast and noise (the cost of a few element-wise
  operations on the batch instead of a MONAI transform call per item). The study uses this one.

No left-right flip in either (see :func:`classical_augmentation`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import (
    Compose,
    EnsureTyped,
    MapTransform,
    RandAdjustContrastd,
    RandAffined,
    RandGaussianNoised,
    Randomizable,
    ScaleIntensityRanged,
)

from medgan_aug.utils.tensors import plain_tensor
from medgan_aug.utils.validation import check_integer, is_real

__all__ = ["classical_augmentation", "BatchClassicalAugmentation", "BatchClassicalAugmentationd"]


def _check_parameters(
    prob: float,
    rotate_degrees: float,
    translate_fraction: float,
    scale_fraction: float,
    noise_std: float,
    gamma_range: tuple[float, float],
) -> None:
    if not is_real(prob) or not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob!r}")
    for arg, value in (
        ("rotate_degrees", rotate_degrees),
        ("translate_fraction", translate_fraction),
        ("scale_fraction", scale_fraction),
        ("noise_std", noise_std),
    ):
        if not is_real(value) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{arg} must be a finite number >= 0, got {value!r}")
    if scale_fraction >= 1:
        raise ValueError(
            f"scale_fraction must be < 1 (a zoom factor 1 - scale_fraction > 0), got {scale_fraction!r}"
        )
    if len(gamma_range) != 2 or not 0 < gamma_range[0] <= gamma_range[1]:
        raise ValueError(f"gamma_range must be (low, high) with 0 < low <= high, got {gamma_range!r}")


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
    check_integer("image_size", image_size, 1)
    _check_parameters(prob, rotate_degrees, translate_fraction, scale_fraction, noise_std, gamma_range)
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


class BatchClassicalAugmentation(Randomizable):
    """The classical augmentation of :func:`classical_augmentation`, applied to a whole batch at once.

    Per item (each with probability ``prob``, drawn independently per item and per augmentation, as
    the per-item MONAI transforms draw them): a random affine about the image centre (rotation uniform in
    ±``rotate_degrees``, translation uniform in ±``translate_fraction`` of the side per axis, zoom
    ``1 + u``, ``u`` uniform in ±``scale_fraction`` per axis; composed rotation · translation · scale as
    MONAI's ``RandAffine``; bilinear, border padding), then a gamma contrast change with gamma uniform in
    ``gamma_range`` on the item's own intensity range (MONAI ``AdjustContrast``), then Gaussian noise with
    a standard deviation uniform in [0, ``noise_std``] (MONAI ``RandGaussianNoise``, ``sample_std=True``);
    finally clipped to [0, 1]. No flips (chest films are not left-right symmetric).

    Every parameter is drawn per item from ``self.R`` (the noise from a ``torch.Generator`` seeded from
    ``self.R``), so a seed fixes the output; the affine of all selected items is one ``affine_grid`` /
    ``grid_sample`` call, and contrast and noise are vectorised over the batch. Items an augmentation
    skips pass through it unchanged (bit for bit).

    Args:
        prob, rotate_degrees, translate_fraction, scale_fraction, noise_std, gamma_range: as in
            :func:`classical_augmentation` (``scale_fraction`` < 1).
        seed: if given, seeds ``self.R`` (``set_random_state``); ``train_classifier`` re-seeds a
            ``batch_transform`` from its own seed anyway.

    Call: ``images (B, C, H, W)`` float in [0, 1] -> augmented float32 ``(B, C, H, W)`` on the same device.
    """

    def __init__(
        self,
        *,
        prob: float = 0.5,
        rotate_degrees: float = 10.0,
        translate_fraction: float = 0.05,
        scale_fraction: float = 0.1,
        noise_std: float = 0.02,
        gamma_range: tuple[float, float] = (0.8, 1.25),
        seed: int | None = None,
    ) -> None:
        _check_parameters(prob, rotate_degrees, translate_fraction, scale_fraction, noise_std, gamma_range)
        self.prob, self.rotate_degrees = float(prob), float(rotate_degrees)
        self.translate_fraction, self.scale_fraction = float(translate_fraction), float(scale_fraction)
        self.noise_std, self.gamma_range = float(noise_std), (float(gamma_range[0]), float(gamma_range[1]))
        self.params: dict[str, np.ndarray] | None = None
        if seed is not None:
            self.set_random_state(seed=int(seed))

    def randomize(self, data: Any = None) -> None:
        """Draw the per-item parameters of a batch of ``data`` (an int: the batch size B) items."""
        batch = int(data)
        rotation = math.radians(self.rotate_degrees)
        self.params = {
            "affine": self.R.random_sample(batch) < self.prob,
            "angle": self.R.uniform(-rotation, rotation, batch),
            "shift": self.R.uniform(-self.translate_fraction, self.translate_fraction, (batch, 2)),
            "zoom": 1.0 + self.R.uniform(-self.scale_fraction, self.scale_fraction, (batch, 2)),
            "contrast": self.R.random_sample(batch) < self.prob,
            "gamma": self.R.uniform(self.gamma_range[0], self.gamma_range[1], batch),
            "noise": self.R.random_sample(batch) < self.prob,
            "noise_std": self.R.uniform(0.0, self.noise_std, batch),
            "noise_seed": np.asarray(self.R.randint(0, 2**31 - 1)),
        }

    def affine_matrices(self, height: int, width: int) -> torch.Tensor:
        """``theta (B, 2, 3)`` for ``F.affine_grid`` (normalised coordinates, x then y) of the drawn parameters.

        Output pixel ``p`` (pixel coordinates about the centre) samples the input at ``R (S p + t)``:
        rotation R, zoom S, shift t (``shift`` times the side, in pixels), composed as MONAI's
        ``RandAffine`` composes them. In normalised coordinates ``q = D p``, ``D = diag(2/W, 2/H)``:
        ``theta = [D R D^-1 S | D R t]``.
        """
        if self.params is None:
            raise ValueError("randomize(B) first: no parameters drawn yet")
        angle = torch.from_numpy(self.params["angle"])
        cos, sin = torch.cos(angle), torch.sin(angle)
        aspect = torch.tensor([[1.0, height / width], [width / height, 1.0]], dtype=torch.float64)
        rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2) * aspect
        zoom = torch.diag_embed(torch.from_numpy(self.params["zoom"]))
        shift = 2.0 * torch.from_numpy(self.params["shift"])[:, :, None]  # D t, t = shift * side
        return torch.cat([rotation @ zoom, rotation @ shift], dim=2).float()

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """Augment ``images`` with the last drawn parameters."""
        if self.params is None or len(self.params["angle"]) != images.shape[0]:
            drawn = None if self.params is None else len(self.params["angle"])
            raise ValueError(
                f"randomize(B) first: parameters are for batch size {drawn}, got {images.shape[0]}"
            )
        out = images.float().clone()
        device = out.device
        chosen = torch.from_numpy(np.flatnonzero(self.params["affine"])).to(device)
        if chosen.numel():
            theta = self.affine_matrices(*out.shape[-2:]).to(device)[chosen]
            grid = F.affine_grid(theta, [chosen.numel(), *out.shape[1:]], align_corners=False)
            out[chosen] = F.grid_sample(
                out[chosen], grid, mode="bilinear", padding_mode="border", align_corners=False
            )
        chosen = torch.from_numpy(np.flatnonzero(self.params["contrast"])).to(device)
        if chosen.numel():  # MONAI AdjustContrast on each item's own range
            part = out[chosen]
            low = part.amin(dim=(1, 2, 3), keepdim=True)
            span = part.amax(dim=(1, 2, 3), keepdim=True) - low
            gamma = torch.from_numpy(self.params["gamma"]).float().to(device)[chosen][:, None, None, None]
            out[chosen] = ((part - low) / (span + 1e-7)) ** gamma * span + low
        chosen_np = np.flatnonzero(self.params["noise"])
        if chosen_np.size:
            generator = torch.Generator().manual_seed(int(self.params["noise_seed"]))
            std = torch.from_numpy(self.params["noise_std"][chosen_np]).float()[:, None, None, None]
            noise = torch.randn((chosen_np.size, *out.shape[1:]), generator=generator) * std
            chosen = torch.from_numpy(chosen_np).to(device)
            out[chosen] = out[chosen] + noise.to(device)
        return out.clamp_(0.0, 1.0)

    def __call__(self, images: torch.Tensor, randomize: bool = True) -> torch.Tensor:
        images = _batch_tensor(images, "images")
        if randomize:
            self.randomize(images.shape[0])
        return self.apply(images)


class BatchClassicalAugmentationd(MapTransform, Randomizable):
    """Dictionary version of :class:`BatchClassicalAugmentation` for collated batch dicts.

    Augments ``batch[key]`` for every key of ``keys`` (default ``"image"``) with one draw of per-item
    parameters (so several image keys of one item get the same change); labels and other entries pass
    through. A batch ``batch_transform`` for :func:`~medgan_aug.engines.train_classifier`.

    Args:
        keys: the image key(s).
        prob, rotate_degrees, translate_fraction, scale_fraction, noise_std, gamma_range, seed: as in
            :class:`BatchClassicalAugmentation`.
        allow_missing_keys: skip missing keys instead of raising.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        *,
        prob: float = 0.5,
        rotate_degrees: float = 10.0,
        translate_fraction: float = 0.05,
        scale_fraction: float = 0.1,
        noise_std: float = 0.02,
        gamma_range: tuple[float, float] = (0.8, 1.25),
        seed: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.augment = BatchClassicalAugmentation(
            prob=prob,
            rotate_degrees=rotate_degrees,
            translate_fraction=translate_fraction,
            scale_fraction=scale_fraction,
            noise_std=noise_std,
            gamma_range=gamma_range,
        )
        self.augment.R = self.R  # one random stream
        if seed is not None:
            self.set_random_state(seed=int(seed))

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> BatchClassicalAugmentationd:
        super().set_random_state(seed, state)
        self.augment.set_random_state(state=self.R)
        return self

    def randomize(self, data: Any = None) -> None:
        self.augment.randomize(data)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # type: ignore[override]
        if not isinstance(data, Mapping):
            raise TypeError(
                f"{type(self).__name__} works on a collated batch dict, got {type(data).__name__}"
            )
        d = dict(data)
        missing = [k for k in self.keys if k not in d]
        if missing and not self.allow_missing_keys:
            raise ValueError(f"batch lacks key(s) {missing}; it has {sorted(map(str, d))}")
        keys = [k for k in self.keys if k in d]
        if not keys:
            return d
        first = _batch_tensor(d[keys[0]], f"batch[{keys[0]!r}]")
        self.randomize(first.shape[0])
        for key in keys:
            d[key] = self.augment.apply(_batch_tensor(d[key], f"batch[{key!r}]"))
        return d


def _batch_tensor(x: Any, name: str) -> torch.Tensor:
    """A plain floating ``(B, C, H, W)`` tensor, or a ValueError/TypeError naming ``name``."""
    x = plain_tensor(x, name)
    if x.ndim != 4:
        raise ValueError(f"{name} must be a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point in [0, 1], got {x.dtype}")
    return x
