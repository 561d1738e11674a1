"""Seeded, checkpoint-free batch order: a batch is a pure function of the iteration number."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["SeededBatches"]


class SeededBatches:
    """Batches as a pure function of the iteration number, so the data order is checkpoint-free.

    The sample order is the concatenation of permutations ``perm_e = default_rng([seed, e]).permutation(N)``
    for e = 0, 1, ...; batch ``i`` (0-based) is positions ``[i * B, (i + 1) * B)`` of that stream. So every
    image is seen once per pass, batches larger than the subset work, and resuming at iteration ``i``
    only needs ``i``. Iterating yields the batch for the bound engine's current iteration (ignite fetches
    a batch before incrementing ``state.iteration``), endlessly; ``len()`` is the ignite epoch length.

    Args:
        images: ``(N, C, H, W)`` float tensor in G's range [-1, 1].
        labels: ``(N, L)`` float tensor or None.
        batch_size: B.
        seed: data-order seed.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, batch_size: int, seed: int) -> None:
        if images.ndim != 4 or len(images) == 0:
            raise ValueError(f"images must be a non-empty (N, C, H, W) tensor, got {tuple(images.shape)}")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"labels has {len(labels)} rows but images has {len(images)}")
        self.images, self.labels = images, labels
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.num_items = len(images)
        self.epoch_length = max(1, self.num_items // self.batch_size)
        self._perms: dict[int, np.ndarray] = {}
        self._engine: Any = None

    def bind(self, engine: Any) -> None:
        self._engine = engine

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.pop(min(self._perms))
            self._perms[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.num_items)
        return self._perms[epoch]

    def indices(self, iteration: int) -> np.ndarray:
        """Row indices of batch ``iteration`` (0-based)."""
        start, stop = iteration * self.batch_size, (iteration + 1) * self.batch_size
        parts, pos = [], start
        while pos < stop:
            epoch, offset = divmod(pos, self.num_items)
            take = min(self.num_items - offset, stop - pos)
            parts.append(self._perm(epoch)[offset : offset + take])
            pos += take
        return np.concatenate(parts)

    def batch(self, iteration: int) -> dict[str, torch.Tensor]:
        idx = torch.from_numpy(self.indices(iteration)).to(self.images.device)
        out = {"image": self.images[idx]}
        if self.labels is not None:
            out["label"] = self.labels[idx]
        return out

    def __len__(self) -> int:
        return self.epoch_length

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        counter = 0
        while True:
            iteration = self._engine.state.iteration if self._engine is not None else counter
            counter += 1
            yield self.batch(iteration)
