"""Mix generated images into real training batches: MONAI batch transforms and an epoch-level dataset.

* :class:`MixSynthetic` (arrays) and :class:`MixSyntheticd` (collated batch dicts) replace -- or append --
  ``round(ratio * B)`` samples of each batch with synthetic ones, in the manner of MONAI's batch-level
  ``MixUp``/``CutMix`` (``monai.transforms.regularization``). This is GAN-based data augmentation as in
  Frid-Adar et al., "GAN-based synthetic medical image augmentation for increased CNN performance in
  liver lesion classification", Neurocomputing 2018, with synthetic chest X-rays from a conditional DCGAN
  (Radford et al., ICLR 2016).
* :class:`MixedDataset` / :func:`mixed_dataset`: the dataset-level alternative, in which an exact share
  of every epoch is synthetic.

``round`` here is round-half-up: ``floor(ratio * B + 0.5)`` (so ``ratio=0.5`` on ``B=3`` gives 2).
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform
from torch import nn
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import get_worker_info

from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.networks.dcgan import to_unit_range
from medgan_aug.utils.tensors import plain_tensor
from medgan_aug.utils.validation import is_real

__all__ = [
    "MODES",
    "num_synthetic",
    "MixSynthetic",
    "MixSyntheticd",
    "MixSyntheticD",
    "MixedDataset",
    "mixed_dataset",
]


MODES = ("replace", "append")


_MAX_SEED = 2**32


def num_synthetic(ratio: float, batch_size: int) -> int:
    """How many synthetic samples a batch of ``batch_size`` gets: ``floor(ratio * batch_size + 0.5)``."""
    return int(math.floor(ratio * batch_size + 0.5))


def _check_ratio(name: str, value: Any, upper_open: bool = False) -> float:
    if not is_real(value):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}: {value!r}")
    value = float(value)
    if not (0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1{')' if upper_open else ']'}, got {value}")
    return value


def _is_item_source(source: Any) -> bool:
    """A source of stored items: a SyntheticDataset, or any dataset with its batch interface (``get_batch``,
    ``has_labels``, ``num_labels``, ``num_channels``, ``image_size``), e.g. a
    :class:`~medgan_aug.data.teacher_labelled.TeacherLabelledDataset`."""
    if isinstance(source, SyntheticDataset):
        return True
    wanted = ("get_batch", "has_labels", "num_labels", "num_channels", "image_size", "__len__")
    return not isinstance(source, nn.Module) and all(hasattr(source, name) for name in wanted)


class _GeneratorSource:
    """Fresh samples from a generator on every draw (no cache), seeded by the transform."""

    def __init__(self, generator: nn.Module, label_sampler: Any) -> None:
        missing = [
            a for a in ("image_size", "latent_dim", "num_labels", "out_channels") if not hasattr(generator, a)
        ]
        if missing:
            raise TypeError(
                f"source generator {type(generator).__name__} lacks the protocol attributes {missing}"
            )
        self.generator = generator
        self.num_labels = int(generator.num_labels)
        if self.num_labels > 0:
            if label_sampler is None or not callable(getattr(label_sampler, "sample", None)):
                raise ValueError(
                    f"a conditional generator source (num_labels={self.num_labels}) needs label_sampler= "
                    "(e.g. JointLabelSampler(real_labels))"
                )
            if int(label_sampler.num_labels) != self.num_labels:
                raise ValueError(
                    f"label width mismatch: label_sampler gives {label_sampler.num_labels} labels, the "
                    f"generator takes {self.num_labels}"
                )
        elif label_sampler is not None:
            raise ValueError("label_sampler given for an unconditional generator (num_labels=0)")
        self.label_sampler = label_sampler
        self.has_labels = self.num_labels > 0
        self.image_shape = (int(generator.out_channels), int(generator.image_size), int(generator.image_size))

    def device(self) -> torch.device | None:
        param = next(self.generator.parameters(), None)
        return None if param is None else param.device

    @torch.no_grad()
    def draw(self, n: int, seed: int) -> dict[str, torch.Tensor]:
        rng = torch.Generator(device="cpu")
        rng.manual_seed(seed)
        z = torch.randn(n, self.generator.latent_dim, generator=rng)
        labels = None if self.label_sampler is None else self.label_sampler.sample(n, rng).float()
        device = self.device() or torch.device("cpu")
        self.generator.eval()
        images = to_unit_range(
            self.generator(z.to(device), None if labels is None else labels.to(device)).float()
        )
        out = {"image": images}
        if labels is not None:
            out["label"] = labels.to(device)
        return out


class MixSynthetic(RandomizableTransform):
    """Replace (or append) ``round(ratio * B)`` samples of a batch with synthetic ones.

    Array version of :class:`MixSyntheticd`: ``images (B, C, H, W)`` and optional ``labels (B, L)`` in,
    ``(images', labels', mask)`` out, ``mask`` a bool ``(B',)`` marking the synthetic rows. Randomness
    (whether to act, with probability ``prob``; which rows; which synthetic items) only from ``self.R``.

    Args:
        source: a :class:`~medgan_aug.data.SyntheticDataset` (its items are drawn uniformly with
            replacement; a materialized/cached one costs no generator forward), a dataset with its batch
            interface (e.g. a :class:`~medgan_aug.data.teacher_labelled.TeacherLabelledDataset`: teacher-labelled
            generated or unlabelled real images), or a generator module
            following the medgan_aug protocol (fresh images each call, seeded from ``self.R``).
        ratio: share of the batch to make synthetic, in [0, 1]; ``round(ratio * B)`` rows (half up).
        prob: probability of acting on a batch at all (else the batch passes with an all-False mask).
        mode: ``"replace"`` (rows chosen uniformly without replacement are overwritten; length stays B) or
            ``"append"`` (synthetic rows are added after the B real ones; length B + n).
        label_sampler: for a conditional generator ``source``: where its conditioning labels come from
            (e.g. :class:`~medgan_aug.data.JointLabelSampler`).

    Synthetic images from a SyntheticDataset are CPU tensors and are moved to the batch's device; a
    generator ``source`` must already be on the batch's device (ValueError otherwise).
    """

    def __init__(
        self,
        source: SyntheticDataset | nn.Module,
        ratio: float = 0.5,
        prob: float = 1.0,
        mode: str = "replace",
        label_sampler: Any = None,
    ) -> None:
        self.ratio = _check_ratio("ratio", ratio)
        _check_ratio("prob", prob)
        RandomizableTransform.__init__(self, prob=float(prob))
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        if _is_item_source(source):
            if label_sampler is not None:
                raise ValueError(
                    "label_sampler is for a generator source; a SyntheticDataset has its own labels"
                )
            self.source: Any = source
            self._has_labels = source.has_labels
            self._image_shape = (source.num_channels, source.image_size, source.image_size)
        elif isinstance(source, nn.Module):
            self.source = _GeneratorSource(source, label_sampler)
            self._has_labels = self.source.has_labels
            self._image_shape = self.source.image_shape
        else:
            raise TypeError(
                f"source must be a SyntheticDataset or a generator nn.Module, got {type(source).__name__}"
            )
        self._params: tuple[int, int, torch.Tensor, Any] | None = None
        self._seeded_pid = os.getpid()

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> MixSynthetic:
        super().set_random_state(seed, state)
        self._seeded_pid = os.getpid()
        return self

    def _reseed_in_worker(self) -> None:
        """In a DataLoader worker not yet seeded by MONAI's ``worker_init_fn``, seed from the worker seed."""
        info = get_worker_info()
        if info is not None and self._seeded_pid != os.getpid():
            self.set_random_state(seed=int(info.seed) % _MAX_SEED)

    def randomize(self, data: Any = None) -> None:
        """Draw the parameters for a batch of ``data`` (an int: the batch size B) rows."""
        batch = int(data)
        super().randomize(None)
        n = num_synthetic(self.ratio, batch) if self._do_transform else 0
        if self.mode == "replace":
            rows = torch.from_numpy(np.sort(self.R.choice(batch, size=n, replace=False))).long()
        else:
            rows = torch.arange(batch, batch + n)
        if _is_item_source(self.source):
            draw: Any = self.R.randint(0, len(self.source), size=n)
        else:
            draw = int(self.R.randint(0, 2**31 - 1))
        self._params = (batch, n, rows, draw)

    def _synthetic(self, device: torch.device) -> dict[str, torch.Tensor]:
        assert self._params is not None
        _, n, _, draw = self._params
        if _is_item_source(self.source):
            out = self.source.get_batch(draw)
            return {k: v.to(device) for k, v in out.items() if k in ("image", "label")}
        source_device = self.source.device()
        if source_device is not None and source_device != device:
            raise ValueError(
                f"device mismatch: the generator source is on {source_device} but the batch is on {device}; "
                "move one of them"
            )
        return self.source.draw(n, draw)

    def check(self, images: torch.Tensor, labels: torch.Tensor | None) -> None:
        """ValueError/TypeError unless the batch fits the synthetic source (shape, width, dtype, device)."""
        if images.ndim != 4:
            raise ValueError(f"images must be a (B, C, H, W) batch, got shape {tuple(images.shape)}")
        if tuple(images.shape[1:]) != self._image_shape:
            raise ValueError(
                f"image size mismatch: the batch has images {tuple(images.shape[1:])} but the synthetic "
                f"source makes {self._image_shape}"
            )
        if not images.is_floating_point():
            raise TypeError(
                f"images must be floating point in [0, 1] to mix with synthetic ones, got {images.dtype}"
            )
        if labels is None:
            return
        if not self._has_labels:
            raise ValueError(
                "the batch has labels but the synthetic source has none (unconditional generator without a "
                "labeller): give the SyntheticDataset a labeller, or mix images only"
            )
        width = self.source.num_labels
        if labels.ndim != 2 or labels.shape[0] != images.shape[0] or labels.shape[1] != width:
            raise ValueError(
                f"label width mismatch: the batch has labels {tuple(labels.shape)} but the synthetic source "
                f"gives ({images.shape[0]}, {width})"
            )
        if labels.device != images.device:
            raise ValueError(f"device mismatch: images on {images.device}, labels on {labels.device}")

    def apply(
        self, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Mix with the last drawn parameters; returns ``(images', labels', mask)``."""
        if self._params is None or self._params[0] != images.shape[0]:
            raise ValueError(
                f"randomize(B) first: parameters are for batch size "
                f"{None if self._params is None else self._params[0]}, the batch has {images.shape[0]}"
            )
        batch, n, rows, _ = self._params
        mask = torch.zeros(
            batch + (n if self.mode == "append" else 0), dtype=torch.bool, device=images.device
        )
        if n == 0:
            return images, labels, mask
        synth = self._synthetic(images.device)
        rows = rows.to(images.device)
        mask[rows] = True
        out = []
        for real, fake in ((images, synth["image"]), (labels, synth.get("label"))):
            if real is None:
                out.append(None)
                continue
            fake = fake.to(device=real.device, dtype=real.dtype)
            if self.mode == "replace":
                mixed = real.clone()
                mixed[rows] = fake
            else:
                mixed = torch.cat([real, fake])
            out.append(mixed)
        return out[0], out[1], mask

    def __call__(  # type: ignore[override]
        self, images: Any, labels: Any = None, randomize: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        images = plain_tensor(images, "images")
        labels = None if labels is None else plain_tensor(labels, "labels")
        self.check(images, labels)
        if randomize:
            self._reseed_in_worker()
            self.randomize(images.shape[0])
        return self.apply(images, labels)


class MixSyntheticd(MapTransform, RandomizableTransform):
    """Dictionary version of :class:`MixSynthetic` for collated batch dicts (like MONAI's ``MixUpd``).

    ``keys`` names the image entry and, optionally, the label entry: ``(image_key[, label_key])``, which
    receive the synthetic items' ``"image"`` and ``"label"``. The output dict also holds ``mask_key``
    (default ``"synthetic"``), a bool ``(B',)`` tensor marking synthetic rows; an existing mask of that
    name (e.g. from a :class:`MixedDataset`) is carried along and updated.

    Other per-sample entries (tensors/arrays with first dimension B, or lists/tuples of length B, that are
    not in ``keys``) have no synthetic counterpart: with ``unmatched="drop"`` (default) they are removed
    from the output, so every remaining per-sample entry stays aligned; with ``unmatched="error"`` a
    ValueError names them. Entries that are not per-sample pass through unchanged.

    Typical use inside an existing training loop::

        source = SyntheticDataset.from_run("runs/NAME", 10_000).materialize()
        mix = MixSyntheticd(keys=("image", "label"), source=source, ratio=0.5)
        mix.set_random_state(seed=0)
        for batch in loader:
            batch = mix(batch)
            ...

    Args:
        keys: ``(image_key[, label_key])``.
        source, ratio, prob, mode, label_sampler: as in :class:`MixSynthetic`.
        mask_key: name of the synthetic-row mask in the output.
        unmatched: ``"drop"`` or ``"error"`` for other per-sample entries (see above).
        allow_missing_keys: skip a missing label key instead of raising (images only are mixed).
    """

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        source: SyntheticDataset | nn.Module | None = None,
        ratio: float = 0.5,
        prob: float = 1.0,
        mode: str = "replace",
        label_sampler: Any = None,
        mask_key: str = "synthetic",
        unmatched: str = "drop",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        if not 1 <= len(self.keys) <= 2:
            raise ValueError(f"keys must be (image_key[, label_key]), got {self.keys}")
        if source is None:
            raise TypeError("MixSyntheticd needs source= (a SyntheticDataset or a generator module)")
        if unmatched not in ("drop", "error"):
            raise ValueError(f"unmatched must be 'drop' or 'error', got {unmatched!r}")
        if mask_key in self.keys:
            raise ValueError(f"mask_key {mask_key!r} collides with keys {self.keys}")
        self.mixer = MixSynthetic(source, ratio=ratio, prob=prob, mode=mode, label_sampler=label_sampler)
        RandomizableTransform.__init__(self, prob=self.mixer.prob)
        self.mixer.R = self.R  # one random stream
        self.mask_key, self.unmatched = mask_key, unmatched

    @property
    def ratio(self) -> float:
        return self.mixer.ratio

    @property
    def mode(self) -> str:
        return self.mixer.mode

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> MixSyntheticd:
        super().set_random_state(seed, state)
        self.mixer.set_random_state(state=self.R)
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # type: ignore[override]
        if not isinstance(data, Mapping):
            raise TypeError(f"MixSyntheticd works on a collated batch dict, got {type(data).__name__}")
        d = dict(data)
        image_key = self.keys[0]
        label_key = self.keys[1] if len(self.keys) > 1 else None
        missing = [k for k in self.keys if k not in d]
        if image_key in missing or (missing and not self.allow_missing_keys):
            raise ValueError(f"batch lacks key(s) {missing}; it has {sorted(map(str, d))}")
        images = plain_tensor(d[image_key], f"batch[{image_key!r}]")
        labels = None
        if label_key is not None and label_key in d:
            labels = plain_tensor(d[label_key], f"batch[{label_key!r}]")
        batch = images.shape[0] if images.ndim else 0
        old_mask = d.get(self.mask_key)
        if old_mask is not None:
            old_mask = plain_tensor(old_mask, "the synthetic mask")
            if old_mask.shape != (batch,):
                raise ValueError(
                    f"existing {self.mask_key!r} entry has shape {tuple(old_mask.shape)}, expected ({batch},)"
                )
        handled = {image_key, label_key, self.mask_key}
        per_sample = [k for k, v in d.items() if k not in handled and _is_per_sample(v, batch)]
        if per_sample and self.unmatched == "error":
            raise ValueError(
                f"per-sample entries {per_sample} have no synthetic counterpart; drop them before mixing "
                "or use unmatched='drop'"
            )
        self.mixer.check(images, labels)
        self.mixer._reseed_in_worker()
        if self.mixer.R is not self.R:  # a worker reseed replaced the mixer's stream: follow it
            self.R = self.mixer.R
        self.mixer.randomize(batch)
        new_images, new_labels, mask = self.mixer.apply(images, labels)
        for k in per_sample:
            del d[k]
        d[image_key] = new_images
        if labels is not None:
            d[label_key] = new_labels
        if old_mask is not None:
            old_mask = old_mask.to(device=mask.device, dtype=torch.bool)
            mask = mask | torch.cat([old_mask, old_mask.new_zeros(mask.shape[0] - batch)])
        d[self.mask_key] = mask
        return d


MixSyntheticD = MixSyntheticDict = MixSyntheticd


def _is_per_sample(value: Any, batch: int) -> bool:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.ndim > 0 and value.shape[0] == batch
    if isinstance(value, (list, tuple)):
        return len(value) == batch
    return False


class MixedDataset(TorchDataset):
    """All real items plus an exact number of synthetic ones per epoch, as one map-style dataset.

    An epoch (one pass over the dataset, in any order) holds every real item once and
    ``n_synthetic = round(share * n_real / (1 - share))`` synthetic items (half up), so the synthetic
    share is ``n_synthetic / (n_real + n_synthetic)`` -- ``share`` up to rounding of one item. Which
    synthetic items take part is drawn without replacement from ``(seed, epoch)``; call
    :meth:`set_epoch` to change them (DataLoader workers pick the change up at the next epoch unless
    ``persistent_workers=True``). Real items get ``"synthetic": False`` so batches collate.

    Args:
        real: the real dataset (dict items with at least ``image`` and, if the synthetic items have one,
            ``label``).
        synthetic: the synthetic dataset (at least ``n_synthetic`` items).
        synthetic_share: the wanted synthetic share of each epoch, in [0, 1).
        seed: seed of the synthetic selection.
    """

    def __init__(self, real: Any, synthetic: Any, synthetic_share: float, seed: int = 0) -> None:
        self.share = _check_ratio("synthetic_share", synthetic_share, upper_open=True)
        if len(real) == 0:
            raise ValueError("real dataset is empty")
        self.real, self.synthetic, self.seed = real, synthetic, int(seed)
        self.num_real = len(real)
        self.num_synthetic = int(math.floor(self.share * self.num_real / (1.0 - self.share) + 0.5))
        if self.num_synthetic > len(synthetic):
            raise ValueError(
                f"synthetic_share={self.share} of an epoch with {self.num_real} real items needs "
                f"{self.num_synthetic} synthetic items, but the synthetic dataset has {len(synthetic)}"
            )
        if self.num_synthetic:
            _check_compatible(real[0], synthetic[0])
        self.epoch = -1
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Select the synthetic items of ``epoch`` (a function of ``(seed, epoch)`` only)."""
        self.epoch = int(epoch)
        rng = np.random.default_rng([self.seed, self.epoch])
        self.synthetic_indices = np.sort(rng.choice(len(self.synthetic), self.num_synthetic, replace=False))

    def __len__(self) -> int:
        return self.num_real + self.num_synthetic

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for MixedDataset of {len(self)} items")
        index = int(index) % len(self)
        if index < self.num_real:
            item = dict(self.real[index])
            item.setdefault("synthetic", False)
            return item
        return self.synthetic[int(self.synthetic_indices[index - self.num_real])]


def _check_compatible(real_item: Mapping, synthetic_item: Mapping) -> None:
    for key in ("image", "label"):
        if key not in synthetic_item:
            continue
        if key not in real_item:
            raise ValueError(f"synthetic items have {key!r} but real items do not (keys {sorted(real_item)})")
        real_shape, synth_shape = tuple(np.shape(real_item[key])), tuple(np.shape(synthetic_item[key]))
        if real_shape != synth_shape:
            what = "image size" if key == "image" else "label width"
            raise ValueError(f"{what} mismatch: real {key} {real_shape}, synthetic {key} {synth_shape}")


def mixed_dataset(real: Any, synthetic: Any, synthetic_share: float, seed: int = 0) -> MixedDataset:
    """A :class:`MixedDataset`: every epoch is all real items plus an exact synthetic share."""
    return MixedDataset(real, synthetic, synthetic_share, seed=seed)
