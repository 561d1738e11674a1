"""Adaptive discriminator augmentation: a :class:`DiffAugment` applied to each image with a probability
``p`` that follows D's overfitting (Karras, Aittala, Hellsten, Laine, Lehtinen & Aila, "Training
Generative Adversarial Networks with Limited Data", NeurIPS 2020, ADA).

The overfitting heuristic is ADA's ``r_t = E[sign(D(x_real))]``: 0 when D cannot tell real from fake,
1 when it is certain on every real image. Every ``interval`` D steps, ``p`` moves by
``sign(r_t - target) * (images seen in the interval) / (speed_kimg * 1000)``, clipped to [0, 1], so ``p``
can go from 0 to 1 in ``speed_kimg`` thousand real images (ADA: target 0.6, 500 kimg; our runs see
~100-300 kimg in total, hence the default of 100).

Two simplifications of ADA, said plainly: the whole DiffAugment pipeline (colour, translation,
cut-out) is applied or skipped per image with probability ``p`` (ADA gates each of its 18 operations
separately), and the pipeline is DiffAugment's, not ADA's geometric/colour set. Real and fake images pass
through the same ``p``, which is what keeps the augmentation from leaking into G (ADA §2).

State (``p``, the running sign sum and both random generators) is checkpointed by :meth:`state_dict`,
so a resumed run continues bit-identically.
"""

from __future__ import annotations

from typing import Any

import torch

from medgan_aug.transforms.diffaugment import DiffAugment
from medgan_aug.utils.validation import check_integer

__all__ = ["AdaptiveAugment"]


class AdaptiveAugment:
    """Apply ``augment`` to each image with an adaptive probability ``p`` (Karras et al. 2020).

    Args:
        augment: the differentiable augmentation (a :class:`DiffAugment`).
        target: the target of the overfitting heuristic ``r_t`` (ADA: 0.6).
        speed_kimg: thousands of real images over which ``p`` can move from 0 to 1.
        interval: D steps between adjustments of ``p``.
        initial_p: starting probability.
        seed: seed of the per-image on/off draws.
        shard: under torchrun, the :class:`medgan_aug.engines.Shard` of this process (duck-typed:
            ``world_size``, ``slice``, ``sum``): the on/off draws are made for the global batch and sliced
            (as :class:`~medgan_aug.engines.ShardedDiffAugment` does), and ``r_t`` is summed over the ranks,
            so every rank holds the same ``p`` as one process would.
    """

    def __init__(
        self,
        augment: DiffAugment,
        target: float = 0.6,
        speed_kimg: float = 100.0,
        interval: int = 4,
        initial_p: float = 0.0,
        seed: int = 0,
        shard: Any = None,
    ) -> None:
        if not isinstance(augment, DiffAugment):
            raise TypeError(f"augment must be a DiffAugment, got {type(augment).__name__}")
        if not isinstance(target, (int, float)) or not 0.0 < target < 1.0:
            raise ValueError(f"ADA target must be in (0, 1), got {target!r}")
        if not isinstance(speed_kimg, (int, float)) or not speed_kimg > 0:
            raise ValueError(f"ADA speed_kimg must be > 0, got {speed_kimg!r}")
        check_integer("ADA interval", interval, 1)
        if not 0.0 <= initial_p <= 1.0:
            raise ValueError(f"ADA initial_p must be in [0, 1], got {initial_p!r}")
        self.augment, self.shard = augment, shard
        self.target, self.speed_kimg, self.interval = float(target), float(speed_kimg), int(interval)
        self.p = float(initial_p)
        self.generator = torch.Generator().manual_seed(int(seed))
        self._sign_sum, self._count, self._steps = 0.0, 0, 0

    def __repr__(self) -> str:
        return f"AdaptiveAugment({self.augment!r}, target={self.target}, p={self.p:.4f})"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Augment each image of ``x`` (B, C, H, W) with probability ``p`` (differentiable in ``x``)."""
        world = 1 if self.shard is None else self.shard.world_size
        draws = torch.rand(
            x.shape[0] * world, generator=self.generator
        )  # drawn even at p = 0: a fixed stream
        if self.shard is not None:
            draws = self.shard.slice(draws)
        augmented = self.augment(x)
        gate = (draws < self.p).to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)
        return gate * augmented + (1.0 - gate) * x

    def observe(self, real_logits: torch.Tensor) -> None:
        """Record one D step's logits on real images; adjust ``p`` every ``interval`` steps."""
        signs, count = float(torch.sign(real_logits.detach()).sum()), float(real_logits.numel())
        if self.shard is not None:
            signs, count = self.shard.sum([signs, count])
        self._sign_sum += signs
        self._count += int(round(count))
        self._steps += 1
        if self._steps % self.interval == 0:
            r_t = self._sign_sum / max(self._count, 1)
            step = self._count / (self.speed_kimg * 1000.0)
            direction = (r_t > self.target) - (r_t < self.target)
            self.p = min(1.0, max(0.0, self.p + direction * step))
            self._sign_sum, self._count = 0.0, 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "p": self.p,
            "sign_sum": self._sign_sum,
            "count": self._count,
            "steps": self._steps,
            "rng_state": self.generator.get_state(),
            "augment": self.augment.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p = float(state["p"])
        self._sign_sum, self._count, self._steps = (
            float(state["sign_sum"]),
            int(state["count"]),
            int(state["steps"]),
        )
        self.generator.set_state(state["rng_state"].cpu())
        self.augment.load_state_dict(state["augment"])
