"""Differentiable augmentation for data-efficient GAN training, for grayscale images.

Zhao, Liu, Lin, Zhu & Han, "Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS 2020.
The same random transformation family is applied to real and fake images before D, and every operation
is differentiable in the image so G's gradient passes through it. With a few hundred training images
this keeps D from memorising the real set.

Operations (policy names), following the reference implementation, for images in [-1, 1]:

* ``"brightness"``: add ``u - 0.5``, ``u ~ U[0, 1)`` per image.
* ``"contrast"``: scale around the image mean by ``u + 0.5``.
* ``"color"``: brightness then contrast (the reference's saturation step is a no-op for one channel).
* ``"translation"``: shift by up to ``translation_ratio`` of the side (default 1/8), zero padding.
* ``"cutout"``: zero one square of side ``cutout_ratio`` of the image (default 1/2) per image.

All randomness comes from one CPU ``torch.Generator`` owned by the object, so results are reproducible
from ``seed`` on any device, and :meth:`DiffAugment.state_dict` / :meth:`~DiffAugment.load_state_dict`
(a uint8 tensor) let a checkpointed run resume with the exact same augmentation stream.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["POLICIES", "DiffAugment"]


POLICIES = ("brightness", "contrast", "color", "translation", "cutout")


class DiffAugment:
    """Apply DiffAugment (Zhao et al. 2020) to a batch ``(B, C, H, W)``; differentiable in the batch.

    Args:
        policy: operation names (see the module docstring) as a sequence or a comma-separated string;
            applied in the order given. Empty: identity.
        translation_ratio: largest shift as a fraction of the image side.
        cutout_ratio: side of the cut-out square as a fraction of the image side.
        seed: seed of the internal generator (ignored if ``generator`` is given).
        generator: a CPU ``torch.Generator`` to draw from instead of a new seeded one.
    """

    def __init__(
        self,
        policy: str | Sequence[str] = ("color", "translation", "cutout"),
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
        seed: int = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        names = [p.strip() for p in policy.split(",")] if isinstance(policy, str) else list(policy)
        names = [p for p in names if p]
        unknown = [p for p in names if p not in POLICIES]
        if unknown:
            raise ValueError(f"unknown DiffAugment policy {unknown}; choose from {POLICIES}")
        if not 0.0 <= translation_ratio < 0.5:
            raise ValueError(f"translation_ratio must be in [0, 0.5), got {translation_ratio!r}")
        if not 0.0 < cutout_ratio <= 1.0:
            raise ValueError(f"cutout_ratio must be in (0, 1], got {cutout_ratio!r}")
        self.policy = tuple(names)
        self.translation_ratio = float(translation_ratio)
        self.cutout_ratio = float(cutout_ratio)
        if generator is None:
            generator = torch.Generator(device="cpu")
            generator.manual_seed(int(seed))
        elif generator.device.type != "cpu":
            raise ValueError(f"generator must be a CPU torch.Generator, got one on {generator.device}")
        self.generator = generator

    def __repr__(self) -> str:
        return (
            f"DiffAugment(policy={','.join(self.policy)!r}, translation_ratio={self.translation_ratio}, "
            f"cutout_ratio={self.cutout_ratio})"
        )

    # -- state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The generator state (uint8 tensor), for checkpoints."""
        return {"rng_state": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore a state from :meth:`state_dict`."""
        self.generator.set_state(state["rng_state"].cpu())

    # -- operations ---------------------------------------------------------------------------------
    def _rand(self, *shape: int, x: torch.Tensor) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator).to(device=x.device, dtype=x.dtype)

    def _randint(self, low: int, high: int, shape: tuple[int, ...], x: torch.Tensor) -> torch.Tensor:
        return torch.randint(low, high, shape, generator=self.generator).to(x.device)

    def brightness(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self._rand(x.shape[0], 1, 1, 1, x=x) - 0.5)

    def contrast(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (self._rand(x.shape[0], 1, 1, 1, x=x) + 0.5) + mean

    def translation(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        sh, sw = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
        if sh == 0 and sw == 0:
            return x
        ty = self._randint(-sh, sh + 1, (b, 1, 1), x)
        tx = self._randint(-sw, sw + 1, (b, 1, 1), x)
        # output pixel (i, j) reads padded pixel (i + ty + 1, j + tx + 1), clamped onto the zero border: two
        # gathers (rows, then columns) of a 1-pixel zero-padded copy
        rows = (torch.arange(h, device=x.device).view(1, h, 1) + ty + 1).clamp(0, h + 1)  # (b, h, 1)
        cols = (torch.arange(w, device=x.device).view(1, 1, w) + tx + 1).clamp(0, w + 1)  # (b, 1, w)
        padded = F.pad(x, [1, 1, 1, 1])
        shifted = padded.gather(2, rows.view(b, 1, h, 1).expand(b, c, h, w + 2))
        return shifted.gather(3, cols.view(b, 1, 1, w).expand(b, c, h, w))

    def cutout(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        ch, cw = int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5)
        oy = self._randint(0, h + (1 - ch % 2), (b, 1, 1), x)
        ox = self._randint(0, w + (1 - cw % 2), (b, 1, 1), x)
        # zero the ch x cw square whose top-left corner is (oy - ch // 2, ox - cw // 2), clipped to the image
        top, left = oy - ch // 2, ox - cw // 2
        ys = torch.arange(h, device=x.device).view(1, h)
        xs = torch.arange(w, device=x.device).view(1, w)
        in_rows = (ys >= top.view(b, 1)) & (ys < top.view(b, 1) + ch)  # (b, h)
        in_cols = (xs >= left.view(b, 1)) & (xs < left.view(b, 1) + cw)  # (b, w)
        keep = 1.0 - (in_rows.to(x.dtype).unsqueeze(2) * in_cols.to(x.dtype).unsqueeze(1))  # (b, h, w)
        return x * keep.unsqueeze(1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"DiffAugment expects a (B, C, H, W) tensor, got {shape}")
        for name in self.policy:
            if name == "color":
                x = self.contrast(self.brightness(x))
            else:
                x = getattr(self, name)(x)
        return x
