"""MixUp and CutMix on collated classification batches, through MONAI's own ``MixUp`` and ``CutMix``.

The study's regulariser controls: a gain from generated images means something only next to what the
regularisers users already have give (``real+mixup``, ``real+cutmix``).

* :class:`MixUpBatchd`: MixUp (Zhang, Cisse, Dauphin & Lopez-Paz, "mixup: Beyond Empirical Risk
  Minimization", ICLR 2018): item b becomes ``lam_b x_b + (1 - lam_b) x_perm(b)`` and its target
  ``lam_b y_b + (1 - lam_b) y_perm(b)``, ``lam_b ~ Beta(alpha, alpha)``.
* :class:`CutMixBatchd`: CutMix (Yun, Han, Oh, Chun, Choe & Yoo, "CutMix: Regularization Strategy to
  Train Strong Classifiers with Localizable Features", ICCV 2019): a box of item perm(b) is pasted into
  item b; the target is mixed by the share of pixels each image keeps (the paper's area-adjusted lambda).

The parameters (``lam``, the pairing permutation, the box corner) are drawn by MONAI's ``Mixer.randomize``
and the images mixed by MONAI's ``MixUp.apply`` / ``CutMix.apply``. The targets are mixed here, because
MONAI 1.6's label paths do not fit ``(B, L)`` classification targets: ``MixUp`` refuses 2-D labels
("Unexpected number of dimensions") and ``CutMix.__call__`` passes labels to the image ``apply``, which
on a ``(B, L)`` tensor replaces each row by its partner's instead of mixing them. Multi-label multi-hot
and one-hot targets are mixed the same way (a convex combination of rows).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import CutMix, MapTransform, MixUp, Randomizable

from medgan_aug.utils.tensors import plain_tensor
from medgan_aug.utils.validation import is_real

__all__ = ["MixUpBatchd", "CutMixBatchd", "cutmix_kept_share"]


def _tensor(x: Any, name: str) -> torch.Tensor:
    x = plain_tensor(x, name)
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {x.dtype}")
    return x


class _MixBatchd(MapTransform, Randomizable):
    """Shared plumbing: keys ``(image_key, label_key)``, one random stream, per-call batch size."""

    mixer_class: type = MixUp

    def __init__(self, keys: KeysCollection = ("image", "label"), alpha: float = 1.0) -> None:
        MapTransform.__init__(self, keys)
        if len(self.keys) != 2:
            raise ValueError(f"keys must be (image_key, label_key), got {self.keys}")
        if not is_real(alpha) or not math.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"alpha must be a finite number > 0 (Beta(alpha, alpha)), got {alpha!r}")
        self.alpha = float(alpha)
        self.mixer = self.mixer_class(batch_size=1, alpha=self.alpha)
        self.mixer.R = self.R  # one random stream

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> Any:
        super().set_random_state(seed, state)
        self.mixer.set_random_state(state=self.R)
        return self

    def randomize(self, data: Any = None) -> None:
        """Draw lam, the pairing and (CutMix) the box corner for the batch ``data`` (B, C, H, W)."""
        self.mixer.batch_size = int(data.shape[0])
        self.mixer.randomize(data if isinstance(self.mixer, CutMix) else None)
        lam, perm, corner = self.mixer._params  # lam on the batch's device, for MONAI's apply on a GPU
        self.mixer._params = (lam.to(data.device), perm, corner)

    @property
    def params(self) -> tuple[torch.Tensor, np.ndarray, list]:
        """MONAI's drawn ``(lam (B,), permutation (B,), box corner per spatial dim)``."""
        return self.mixer._params

    def label_weights(self, images: torch.Tensor) -> torch.Tensor:
        """``(B,)``: the weight of each item's own target (the rest goes to its partner's)."""
        return self.params[0]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # type: ignore[override]
        if not isinstance(data, Mapping):
            raise TypeError(
                f"{type(self).__name__} works on a collated batch dict, got {type(data).__name__}"
            )
        image_key, label_key = self.keys
        missing = [k for k in self.keys if k not in data]
        if missing:
            raise ValueError(f"batch lacks key(s) {missing}; it has {sorted(map(str, data))}")
        images = _tensor(data[image_key], f"batch[{image_key!r}]")
        labels = _tensor(data[label_key], f"batch[{label_key!r}]")
        if images.ndim != 4:
            raise ValueError(f"batch[{image_key!r}] must be (B, C, H, W), got shape {tuple(images.shape)}")
        if labels.ndim != 2 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"batch[{label_key!r}] must be ({images.shape[0]}, L) targets, got shape {tuple(labels.shape)}"
            )
        self.randomize(images)
        with warnings.catch_warnings():  # MONAI's CutMix indexes with a list (a torch deprecation warning)
            warnings.simplefilter("ignore", UserWarning)
            mixed = self.mixer.apply(images)
        weight = self.label_weights(images).to(device=labels.device, dtype=labels.dtype)[:, None]
        perm = torch.as_tensor(self.params[1], device=labels.device)
        d = dict(data)
        d[image_key] = mixed.to(images.dtype)
        d[label_key] = weight * labels + (1 - weight) * labels[perm]
        return d


class MixUpBatchd(_MixBatchd):
    """MixUp on a collated batch dict (Zhang et al., ICLR 2018), images by MONAI's ``MixUp``.

    Each item b is mixed with item ``perm(b)`` of the same batch, ``lam_b ~ Beta(alpha, alpha)``, images
    and ``(B, L)`` targets with the same ``lam_b`` (see the module docstring). Randomness only from
    ``self.R`` (``set_random_state``; :func:`~medgan_aug.engines.train_classifier` seeds it from the run
    seed). Other entries of the batch pass through.

    Args:
        keys: ``(image_key, label_key)``.
        alpha: Beta parameter (1.0: lam uniform, MONAI's default; the paper used 1.0 on CIFAR-10 and
            0.1-0.4 on ImageNet).
    """

    mixer_class = MixUp


class CutMixBatchd(_MixBatchd):
    """CutMix on a collated batch dict (Yun et al., ICCV 2019), images by MONAI's ``CutMix``.

    Item b gets a box of item ``perm(b)`` of side ``sqrt(1 - lam_b)`` times the image's, its corner drawn
    once per batch (MONAI's ``CutMix``) and the box clipped at the border; its target becomes
    ``k_b y_b + (1 - k_b) y_perm(b)``, ``k_b`` the share of its own pixels it keeps
    (:func:`cutmix_kept_share`, the paper's area-adjusted lambda), so clipped boxes count what was pasted.

    Args:
        keys: ``(image_key, label_key)``.
        alpha: Beta parameter of lam (the paper's 1.0, MONAI's default).
    """

    mixer_class = CutMix

    def label_weights(self, images: torch.Tensor) -> torch.Tensor:
        lam, _, corner = self.params
        return cutmix_kept_share(lam, [int(c) for c in corner], tuple(images.shape[2:]))


def cutmix_kept_share(lam: torch.Tensor, corner: list[int], spatial: tuple[int, ...]) -> torch.Tensor:
    """Share of its own pixels each item keeps under MONAI's ``CutMix.apply`` (float32 ``(B,)``).

    The pasted box of item b starts at ``corner`` and spans ``ceil(d * sqrt(1 - lam_b))`` along each
    spatial side d, clipped at the border, as MONAI cuts it.

    Raises:
        ValueError: ``corner`` and ``spatial`` differ in length.
    """
    if len(corner) != len(spatial):
        raise ValueError(f"corner {corner} and spatial shape {spatial} must have one entry per spatial dim")
    kept = []
    for weight in lam.tolist():
        area = 1
        for start, side in zip(corner, spatial):
            area *= max(0, min(math.ceil(start + side * math.sqrt(1 - weight)), side) - start)
        kept.append(1.0 - area / math.prod(spatial))
    return torch.tensor(kept, dtype=torch.float32)
