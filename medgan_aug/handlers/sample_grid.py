"""An ignite handler that saves a grid of the sampled (EMA) generator from fixed noise every N iterations."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
from ignite.engine import Engine, Events

from medgan_aug.networks.dcgan import standing_batchnorm_stats, to_unit_range
from medgan_aug.utils.atomic import atomic_path

__all__ = ["SampleGrid"]


class SampleGrid:
    """Every ``every`` iterations, a grid of the sampled (EMA) generator from fixed noise (and labels)."""

    def __init__(
        self,
        folder: Path,
        every: int,
        z: torch.Tensor,
        labels: torch.Tensor | None,
        labels_pool: torch.Tensor | None,
        standing_batches: int,
        seed: int,
    ) -> None:
        self.folder, self.every, self.z, self.labels = folder, every, z, labels
        self.labels_pool, self.standing_batches, self.seed = labels_pool, standing_batches, seed
        folder.mkdir(parents=True, exist_ok=True)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        it = engine.state.iteration
        if it % self.every == 0 or it >= engine.iterations:
            self.save(engine, it)

    @torch.no_grad()
    def save(self, engine: Engine, it: int) -> Path:
        from torchvision.utils import save_image

        g = standing_batchnorm_stats(
            copy.deepcopy(engine.generator_ema), self.labels_pool, self.standing_batches, seed=self.seed
        )
        device = engine.state.device
        labels = None if self.labels is None else self.labels.to(device)
        images = to_unit_range(g(self.z.to(device), labels)).cpu()
        path = self.folder / f"iter_{it:08d}.png"
        with atomic_path(path) as tmp:
            save_image(images, tmp, nrow=int(math.ceil(math.sqrt(len(images)))), padding=1)
        return path
