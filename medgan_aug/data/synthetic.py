"""Generated chest X-rays as a MONAI dataset whose items look exactly like the real ones.

:class:`SyntheticDataset` turns a trained generator (the conditional DCGAN of Radford et al.,
"Unsupervised Representation Learning with Deep Convolutional Generative Adversarial Networks",
ICLR 2016, conditioned on findings as in Mirza & Osindero, "Conditional Generative Adversarial Nets",
arXiv:1411.1784) into dict items ``{"image": float32 (C, H, W) in [0, 1], "label": float32 (L,),
"synthetic": True}`` -- the keys, dtypes, shapes and intensity range of
:class:`medgan_aug.data.MedMNISTDataset` items, plus the ``synthetic`` flag -- so real and synthetic
data can be concatenated or mixed without adapters.

Determinism. Item ``i`` depends only on ``(seed, i)``: items are grouped in fixed chunks
``[k * CHUNK_SIZE, (k + 1) * CHUNK_SIZE)``; the latent codes (and sampled labels) of chunk ``k`` come
from a ``torch.Generator`` seeded from ``(seed, k)``, and the generator always runs on one whole
chunk (the last one padded to ``CHUNK_SIZE``). A chunk's forward pass therefore always sees the same
input tensor of the same shape, which makes its output bytes identical whatever the DataLoader's
worker count, shuffling, access order, or this dataset's ``batch_size`` (on a given device/backend;
CPU results are bit-identical, CUDA ones only as far as cuDNN is deterministic). Chunks are cached
(least recently used first out).

Labels for a conditional generator (``generator.num_labels > 0``):

* default (``label_sampler="joint"`` with a ``label_pool``, which :meth:`SyntheticDataset.from_run`
  takes from the run's training subset): :class:`JointLabelSampler` resamples whole real label
  vectors, so co-occurring findings keep their joint distribution;
* ``labels``: a given ``(num_samples, L)`` matrix (item ``i`` gets row ``i``) or one ``(L,)`` vector for
  every item;
* ``label_sampler="balanced"``: :class:`BalancedLabelSampler` (scheme in its docstring) raises rare
  findings;
* any object with ``num_labels`` and ``sample(n, generator) -> (n, L)`` float tensor.

For an unconditional generator (``num_labels == 0``) labels come from a ``labeller`` callable
(images ``(B, C, H, W)`` in [0, 1] -> ``(B, L)`` soft or hard labels), e.g. a classifier trained on the
real subset (pseudo-labels); without one, items have no ``"label"`` key and :attr:`targets` raises.

Shuffled labels (``shuffle_labels_seed``, or :meth:`SyntheticDataset.with_shuffled_labels`): the placebo
control of the study. Images stay byte-identical to those of the same dataset without shuffling (the
generator is still conditioned on the original labels), but item ``i`` carries the label of item
``perm[i]``, ``perm`` a fixed permutation of the items from :func:`~medgan_aug.data.label_samplers.label_permutation`.
The label multiset is unchanged and the image-label pairing is broken, so a gain that survives the
shuffle comes from the images, not from their label information.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import Dataset
from torch import nn

from medgan_aug.data.label_samplers import (
    LabelSampler,
    chunk_generator,
    label_permutation,
    meta_label_pool,
    resolve_labels,
)
from medgan_aug.data.pretrained import pretrained_path
from medgan_aug.data.synthetic_cache import load_or_generate
from medgan_aug.networks.dcgan import to_unit_range
from medgan_aug.networks.model_file import (
    check_generator_protocol,
    load_any_generator,
    resolve_generator_file,
)
from medgan_aug.utils.validation import check_integer, is_integer

__all__ = ["CHUNK_SIZE", "SyntheticDataset"]


#: Items per chunk: the unit of randomness and of every generator forward pass. Never depends on
#: ``batch_size``; changing it changes which images a seed produces.
CHUNK_SIZE = 256


class SyntheticDataset(Dataset):
    """Deterministic generated images as MONAI dict items (see the module docstring).

    Args:
        generator: a module following the medgan_aug generator protocol (``image_size``, ``latent_dim``,
            ``num_labels``, ``out_channels``; ``forward(z, labels)`` in [-1, 1]), e.g.
            :class:`medgan_aug.networks.DCGANGenerator`. It is put in eval mode and run under
            ``torch.no_grad``.
        num_samples: number of items (the dataset's length).
        labels: conditional generators only: a ``(num_samples, L)`` matrix or one ``(L,)`` vector.
        label_sampler: conditional generators only: ``"joint"`` (default when ``label_pool`` is given),
            ``"balanced"``, or a :class:`LabelSampler` object.
        seed: item ``i`` depends only on ``(seed, i)``.
        transform: MONAI transform applied to every item after generation (keep it deterministic to keep
            items deterministic).
        batch_size: items generated per cache miss (rounded up to whole chunks of :data:`CHUNK_SIZE`;
            each chunk is one generator forward). Does not change any item's bytes.
        device: where the generator runs; items are always returned on the CPU.
        label_pool: the real label matrix ``(M, L)`` for ``"joint"`` / ``"balanced"``.
        labeller: unconditional generators only: images ``(B, C, H, W)`` in [0, 1] -> labels ``(B, L)``
            (probabilities or 0/1, not logits); called once per chunk under ``torch.no_grad`` (an
            ``nn.Module`` labeller is put in eval mode).
        label_names: optional names of the L labels (kept as an attribute).
        shuffle_labels_seed: if given (an int >= 0), permute the item labels among the items with this
            seed (see the module docstring); images are unchanged. With a ``labeller`` the first access to
            labels generates every image once (the permutation needs all labels).
        cache_bytes: memory budget of the chunk cache (least recently used chunks are evicted); at least
            one ``batch_size`` block is always kept.

    Raises:
        TypeError: ``generator``, ``labeller`` or ``label_sampler`` has the wrong type.
        ValueError: a bad count, seed, batch size, label matrix, or a label option that does not fit the
            generator (labels for an unconditional one, none for a conditional one, width mismatch).
    """

    def __init__(
        self,
        generator: nn.Module,
        num_samples: int,
        labels: Any = None,
        label_sampler: str | LabelSampler | None = None,
        seed: int = 0,
        transform: Callable | Sequence[Callable] | None = None,
        batch_size: int = 256,
        device: str | torch.device = "cpu",
        label_pool: Any = None,
        labeller: Callable[[torch.Tensor], torch.Tensor] | None = None,
        label_names: Sequence[str] | None = None,
        cache_bytes: int = 256 * 2**20,
        shuffle_labels_seed: int | None = None,
    ) -> None:
        check_generator_protocol(generator)
        check_integer("num_samples", num_samples, 1)
        check_integer("batch_size", batch_size, 1)
        check_integer("seed", seed, 0)
        if labeller is not None and not callable(labeller):
            raise TypeError(f"labeller must be callable (images -> labels), got {type(labeller).__name__}")
        self.generator = generator
        self.num_samples, self.seed, self.batch_size = int(num_samples), int(seed), int(batch_size)
        self.device = torch.device(device)
        self.image_size, self.latent_dim = int(generator.image_size), int(generator.latent_dim)
        self.num_channels = int(generator.out_channels)
        self.conditional = int(generator.num_labels) > 0
        self.labeller = labeller
        self.label_sampler, self._fixed_labels = resolve_labels(
            generator.num_labels, self.num_samples, labels, label_sampler, label_pool, labeller is not None
        )
        self.shuffle_labels_seed: int | None = None
        self._label_order: np.ndarray | None = None
        self._shuffled: torch.Tensor | None = None  # every item's shuffled label, computed once
        if shuffle_labels_seed is not None:
            self._require_labels("shuffled labels")
            self._label_order = label_permutation(self.num_samples, shuffle_labels_seed)
            self.shuffle_labels_seed = int(shuffle_labels_seed)
        self.label_names = list(label_names) if label_names is not None else None
        self.cache_bytes = int(cache_bytes)
        self._cache: OrderedDict[int, dict[str, torch.Tensor]] = OrderedDict()
        self._full: dict[str, torch.Tensor] | None = None  # set by materialize()
        self.meta: dict[str, Any] = {}
        self.source: Path | None = None
        super().__init__(data=range(self.num_samples), transform=transform)

    # ------------------------------------------------------------------ labels
    @property
    def block_size(self) -> int:
        """Items one generator forward makes on a cache miss: ``batch_size`` rounded up to whole chunks."""
        return CHUNK_SIZE * max(1, math.ceil(self.batch_size / CHUNK_SIZE))

    @property
    def has_labels(self) -> bool:
        """Whether items carry a ``"label"`` key."""
        return self.conditional or self.labeller is not None

    @property
    def num_labels(self) -> int:
        """Width L of item labels; ValueError when items have none."""
        self._require_labels("num_labels")
        if self.conditional:
            return int(self.generator.num_labels)
        return int(self._chunk(0)["label"].shape[1])

    @property
    def targets(self) -> np.ndarray:
        """All item labels ``(num_samples, L)`` float32 (generates the images of labeller-labelled data)."""
        self._require_labels("targets")
        if self._label_order is not None:
            return self._shuffled_labels().numpy().copy()
        return self._paired_labels().numpy().copy()

    def _paired_labels(self) -> torch.Tensor:
        """Every item's own (unshuffled) label ``(num_samples, L)``."""
        if self._fixed_labels is not None:
            return self._fixed_labels
        num_chunks = math.ceil(self.num_samples / CHUNK_SIZE)
        if self.label_sampler is not None:
            rows = [self.chunk_inputs(k)[1] for k in range(num_chunks)]
        elif self._label_order is not None:  # cached chunks hold shuffled labels: label fresh ones
            rows = [self._generate_chunk(k, shuffled=False)["label"] for k in range(num_chunks)]
        else:
            rows = [self._chunk(k)["label"] for k in range(num_chunks)]
        return torch.cat(rows)[: self.num_samples]

    def _shuffled_labels(self) -> torch.Tensor:
        """Item ``i``'s shuffled label is item ``perm[i]``'s own label."""
        if self._shuffled is None:
            order = torch.from_numpy(self._label_order)
            self._shuffled = self._paired_labels()[order].contiguous()
        return self._shuffled

    def with_shuffled_labels(self, shuffle_labels_seed: int) -> SyntheticDataset:
        """A copy whose labels are permuted among the items (the placebo); images are shared, not regenerated.

        Equal to building the dataset again with ``shuffle_labels_seed`` (the permutation is applied to the
        original labels, also when this dataset is shuffled already), but the images of a materialized
        dataset are the same tensor.
        """
        self._require_labels("shuffled labels")
        order = label_permutation(self.num_samples, shuffle_labels_seed)
        paired = self._paired_labels()
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.shuffle_labels_seed, copy._label_order = int(shuffle_labels_seed), order
        copy._shuffled = paired[torch.from_numpy(order)].contiguous()
        copy._cache, copy._full = OrderedDict(), None
        if self._full is not None:
            copy._full = {**self._full, "label": copy._shuffled}
            copy._cache = copy._chunk_views()
        return copy

    def _require_labels(self, what: str) -> None:
        if not self.has_labels:
            raise ValueError(
                f"this SyntheticDataset has no labels (so no {what}): its generator is unconditional and no "
                "labeller was given. Pass labeller=(images -> labels), e.g. a classifier trained on the real "
                "subset, to label the generated images"
            )

    # ------------------------------------------------------------------ generation
    def chunk_inputs(self, k: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Latent codes ``(CHUNK_SIZE, latent_dim)`` and conditioning labels of chunk ``k``."""
        generator = chunk_generator(self.seed, k)
        z = torch.randn(CHUNK_SIZE, self.latent_dim, generator=generator)
        if self.label_sampler is not None:
            labels = self.label_sampler.sample(CHUNK_SIZE, generator)
            labels = torch.as_tensor(labels, dtype=torch.float32).cpu()
            if labels.shape != (CHUNK_SIZE, self.generator.num_labels):
                raise ValueError(
                    f"label sampler returned shape {tuple(labels.shape)}, expected "
                    f"({CHUNK_SIZE}, {self.generator.num_labels})"
                )
            return z, labels
        if self._fixed_labels is not None:
            rows = self._fixed_labels[k * CHUNK_SIZE : (k + 1) * CHUNK_SIZE]
            if rows.shape[0] < CHUNK_SIZE:  # pad the last chunk; padding rows are never returned
                rows = torch.cat([rows, rows.new_zeros(CHUNK_SIZE - rows.shape[0], rows.shape[1])])
            return z, rows
        return z, None

    @torch.no_grad()
    def _generate_chunk(self, k: int, shuffled: bool = True) -> dict[str, torch.Tensor]:
        z, labels = self.chunk_inputs(k)
        self.generator.eval()
        out = self.generator(z.to(self.device), None if labels is None else labels.to(self.device))
        expected = (CHUNK_SIZE, self.num_channels, self.image_size, self.image_size)
        if tuple(out.shape) != expected:
            raise ValueError(f"generator returned shape {tuple(out.shape)}, expected {expected}")
        images = to_unit_range(out.float()).cpu().contiguous()
        chunk = {"image": images}
        if labels is not None:
            chunk["label"] = labels
        elif self.labeller is not None:
            if isinstance(self.labeller, nn.Module):
                self.labeller.eval()
            guessed = torch.as_tensor(self.labeller(images.to(self.device))).detach().float().cpu()
            if guessed.ndim == 1:
                guessed = guessed[:, None]
            if guessed.ndim != 2 or guessed.shape[0] != CHUNK_SIZE:
                raise ValueError(
                    f"labeller must return ({CHUNK_SIZE}, L) labels for {CHUNK_SIZE} images, "
                    f"got shape {tuple(guessed.shape)}"
                )
            chunk["label"] = guessed.contiguous()
        if shuffled and self._label_order is not None:  # the images keep their conditioning labels
            rows = self._shuffled_labels()[k * CHUNK_SIZE : (k + 1) * CHUNK_SIZE]
            padding = rows.new_zeros(CHUNK_SIZE - rows.shape[0], rows.shape[1])
            chunk["label"] = torch.cat([rows, padding]) if padding.shape[0] else rows
        return chunk

    def _chunk(self, k: int) -> dict[str, torch.Tensor]:
        """Chunk ``k`` from the LRU cache, generating its ``batch_size`` block on a miss."""
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        per_block = self.block_size // CHUNK_SIZE
        num_chunks = math.ceil(self.num_samples / CHUNK_SIZE)
        first = (k // per_block) * per_block
        for j in range(first, min(first + per_block, num_chunks)):
            if j not in self._cache:
                self._cache[j] = self._generate_chunk(j)
        self._cache.move_to_end(k)
        chunk_bytes = sum(t.numel() * t.element_size() for t in self._cache[k].values())
        capacity = max(per_block + 1, self.cache_bytes // max(chunk_bytes, 1))
        while len(self._cache) > capacity:
            self._cache.popitem(last=False)
        return self._cache[k]

    def materialize(self, cache_file: str | os.PathLike | None = None) -> SyntheticDataset:
        """Generate and cache every chunk now (raising ``cache_bytes`` to fit them all); returns self. Useful
        before forking DataLoader workers (they inherit the cache) or for a mixing source. ``cache_file``: keep
        the items in that file too and read them from it next time, for a slow generator (``--model ddpm``;
        fingerprinted, a file of other items is replaced; not with a ``labeller``:
        :mod:`medgan_aug.data.synthetic_cache`)."""
        if self._full is not None and cache_file is None:
            return self
        if cache_file is not None:
            full = load_or_generate(self, cache_file, self._generate_all)
        else:
            full = self._generate_all()
        chunk_bytes = sum(t[:CHUNK_SIZE].numel() * t.element_size() for t in full.values())
        self.cache_bytes = max(self.cache_bytes, chunk_bytes * (math.ceil(self.num_samples / CHUNK_SIZE) + 1))
        self._full = full
        self._cache = self._chunk_views()
        return self

    def _generate_all(self) -> dict[str, torch.Tensor]:
        """Every item's tensors, one contiguous tensor per key (gathers in get_batch are a single index)."""
        num_chunks = math.ceil(self.num_samples / CHUNK_SIZE)
        chunk_bytes = sum(t.numel() * t.element_size() for t in self._chunk(0).values())
        self.cache_bytes = max(self.cache_bytes, chunk_bytes * (num_chunks + 1))
        chunks = [self._chunk(k) for k in range(num_chunks)]
        return {key: torch.cat([c[key] for c in chunks])[: self.num_samples] for key in chunks[0]}

    def _chunk_views(self) -> OrderedDict[int, dict[str, torch.Tensor]]:
        """The chunk cache as views of the materialized tensors."""
        assert self._full is not None
        return OrderedDict(
            (k, {key: t[k * CHUNK_SIZE : (k + 1) * CHUNK_SIZE] for key, t in self._full.items()})
            for k in range(math.ceil(self.num_samples / CHUNK_SIZE))
        )

    def _check_index(self, index: int) -> int:
        if not is_integer(index):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for SyntheticDataset of {self.num_samples} items")
        return int(index) % self.num_samples

    def _raw_item(self, index: int) -> dict[str, Any]:
        k, r = divmod(index, CHUNK_SIZE)
        chunk = self._chunk(k)
        item: dict[str, Any] = {"image": chunk["image"][r].clone()}
        if "label" in chunk:
            item["label"] = chunk["label"][r].clone()
        item["synthetic"] = True
        return item

    def _transform(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        return self.transform(self._raw_item(self._check_index(index)))

    def get_batch(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        """Collated items for ``indices``: ``{"image": (n, C, H, W), "label": (n, L)?, "synthetic": (n,)}``.

        Equal to stacking ``self[i]`` (the per-item transform is applied when there is one), but gathers
        from cached chunks without building one dict per item when there is no transform.
        """
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64)).reshape(-1)
        if index.numel() and (index.min() < -self.num_samples or index.max() >= self.num_samples):
            raise IndexError(f"indices out of range for SyntheticDataset of {self.num_samples} items")
        index = index % self.num_samples
        if len(self.transform.transforms) > 0:
            items = [self[int(i)] for i in index]
            batch = {key: torch.stack([torch.as_tensor(it[key]) for it in items]) for key in items[0]}
            return batch
        if self._full is not None:
            batch = {key: t[index] for key, t in self._full.items()}
            batch["synthetic"] = torch.ones(index.numel(), dtype=torch.bool)
            return batch
        images = torch.empty(index.numel(), self.num_channels, self.image_size, self.image_size)
        labels: torch.Tensor | None = None
        chunk_of = torch.div(index, CHUNK_SIZE, rounding_mode="floor")
        for k in torch.unique(chunk_of).tolist():
            where = torch.nonzero(chunk_of == k).flatten()
            chunk = self._chunk(k)
            rows = index[where] - k * CHUNK_SIZE
            images[where] = chunk["image"][rows]
            if "label" in chunk:
                if labels is None:
                    labels = torch.empty(index.numel(), chunk["label"].shape[1])
                labels[where] = chunk["label"][rows]
        batch = {"image": images}
        if labels is not None:
            batch["label"] = labels
        batch["synthetic"] = torch.ones(index.numel(), dtype=torch.bool)
        return batch

    # ------------------------------------------------------------------ plumbing
    def __len__(self) -> int:
        return self.num_samples

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict(self._cache)  # workers start with the parent's cache (fork shares it)
        if self._full is not None:  # the chunk entries are views of _full: rebuilt on unpickling
            state["_cache"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._cache is None:
            self._cache = self._chunk_views()

    def clear_cache(self) -> None:
        """Drop every cached chunk (and the materialized tensors)."""
        self._cache.clear()
        self._full = None

    def __repr__(self) -> str:
        labels = "none" if not self.has_labels else "fixed" if self._fixed_labels is not None else None
        labels = labels or (repr(self.label_sampler) if self.label_sampler is not None else "labeller")
        shuffle = (
            "" if self.shuffle_labels_seed is None else f", shuffle_labels_seed={self.shuffle_labels_seed}"
        )
        size = f"{self.num_channels}, {self.image_size}, {self.image_size}"
        return f"SyntheticDataset(n={self.num_samples}, image=({size}), seed={self.seed}, labels={labels}{shuffle})"

    @classmethod
    def from_run(
        cls,
        run_dir_or_file: str | os.PathLike,
        num_samples: int,
        labels: Any = None,
        label_sampler: str | LabelSampler | None = None,
        seed: int = 0,
        transform: Callable | Sequence[Callable] | None = None,
        batch_size: int = 256,
        device: str | torch.device = "cpu",
        labeller: Callable[[torch.Tensor], torch.Tensor] | None = None,
        cache_bytes: int = 256 * 2**20,
        shuffle_labels_seed: int | None = None,
    ) -> SyntheticDataset:
        """Build the dataset from a training run's EMA generator (``<run>/generator.pt``, weights only).

        Both generator families load (``--model dcgan`` or ``ddpm``, :data:`~medgan_aug.networks.model_file.GENERATOR_FAMILIES`);
        a diffusion generator samples with the DDIM steps and guidance scale its file records (change them on
        ``dataset.generator.set_sampling`` before the first item is read).

        For a conditional generator without ``labels`` or a sampler object, labels are resampled from the
        run's training subset (generator meta ``train_labels``): jointly by default, or with
        ``label_sampler="balanced"``.

        Args:
            run_dir_or_file: a run directory holding ``generator.pt``, or a generator file.
            num_samples, labels, label_sampler, seed, transform, batch_size, device, labeller, cache_bytes,
                shuffle_labels_seed: as in :class:`SyntheticDataset`.

        Raises:
            FileNotFoundError: no such run directory / generator file.
            ValueError: the file is not a generator file, or its meta lacks the labels to resample.
        """
        path = resolve_generator_file(run_dir_or_file)
        generator, meta = load_any_generator(path, map_location=device)  # a DCGAN or a diffusion generator
        meta = dict(meta or {})
        pool = None
        if (
            int(generator.num_labels) > 0
            and labels is None
            and (label_sampler is None or isinstance(label_sampler, str))
        ):
            pool = meta_label_pool(meta, int(generator.num_labels), path)
            label_sampler = label_sampler or "joint"
        dataset = cls(
            generator,
            num_samples,
            labels=labels,
            label_sampler=label_sampler,
            seed=seed,
            transform=transform,
            batch_size=batch_size,
            device=device,
            label_pool=pool,
            labeller=labeller,
            label_names=meta.get("label_names"),
            cache_bytes=cache_bytes,
            shuffle_labels_seed=shuffle_labels_seed,
        )
        dataset.meta, dataset.source = meta, path
        return dataset

    @classmethod
    def pretrained(cls, name: str, num_samples: int = 1000, **kwargs: Any) -> SyntheticDataset:
        """:meth:`from_run` (``**kwargs`` too) on a generator shipped in the package, ``"nih1000"`` or
        ``"pneumoniamnist"`` (MD5-checked; :data:`medgan_aug.data.pretrained.PRETRAINED`). Each saw every
        training image of its data set (its model card says how well it does): for demos and as a starting
        point, never for a low-data study on the same data. Raises ValueError (unknown name) or ModelFileError.
        """
        return cls.from_run(pretrained_path(name), num_samples, **kwargs)
