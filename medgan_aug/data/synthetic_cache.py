"""A generated dataset's images kept on disk, so an expensive generator samples them once.

A DDPM sampled with 25 DDIM steps makes about 2 images/s on one core of a 2-core AVX2 CPU (a DCGAN over
1,000), so 5,000 images cost about 40 minutes; a study that mixes the same generator's images into 24 groups, or a
resumed one, should not draw them 24 times. :func:`load_or_generate` stores what
:meth:`SyntheticDataset.materialize <medgan_aug.data.SyntheticDataset.materialize>` computed (every item's
image and label tensors) in a weights-only torch file with a fingerprint of everything those bytes depend
on: the generator's parameters and buffers, its sampling settings (DDIM steps, guidance), the number of
items, the seed, the label shuffle, and every chunk's latent codes and conditioning labels (which also
covers the label sampler and its pool). A file whose fingerprint differs (another generator, seed or
count) or that cannot be read is generated again and replaced, with a warning; it is a cache, so nothing
is lost. Items labelled by a ``labeller`` callable are refused: a callable cannot be fingerprinted (cache
the unlabelled images and label them afterwards, as :class:`~medgan_aug.data.TeacherLabelledDataset` does).

Why not MONAI's ``PersistentDataset``: it caches per item, keyed by the item's data dict, after
deterministic transforms; here the unit of generation is a chunk of 256 items and the key must cover
generator weights that are not part of any item.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from medgan_aug.utils.errors import CorruptFileError, UnsafeFileError
from medgan_aug.utils.serialization import atomic_torch_save, safe_torch_load

__all__ = ["dataset_fingerprint", "load_or_generate"]

#: Format version of the cache file (part of the fingerprint).
CACHE_VERSION = 1


def _update(digest: Any, tensor: torch.Tensor) -> None:
    data = tensor.detach().cpu()
    digest.update(f"{data.dtype}{tuple(data.shape)}".encode())
    if data.dtype not in (torch.float32, torch.float64, torch.int64, torch.uint8, torch.bool):
        data = data.float()  # bf16/fp16 have no numpy view
    digest.update(data.contiguous().numpy().tobytes())


def dataset_fingerprint(dataset: Any) -> str:
    """SHA-1 of everything the materialized bytes of ``dataset`` (a SyntheticDataset) depend on.

    Raises:
        ValueError: the dataset labels its items with a ``labeller`` callable (it cannot be fingerprinted).
    """
    if getattr(dataset, "labeller", None) is not None:
        raise ValueError(
            "cache_file: this dataset labels its items with a labeller, which a cache cannot fingerprint; "
            "materialize it without cache_file, or cache the unlabelled images and label them afterwards "
            "(TeacherLabelledDataset)"
        )
    generator = dataset.generator
    digest = hashlib.sha1()
    settings = (
        CACHE_VERSION,
        type(generator).__name__,
        getattr(generator, "num_inference_steps", None),
        getattr(generator, "guidance_scale", None),
        dataset.num_samples,
        dataset.seed,
        dataset.shuffle_labels_seed,
        dataset.device.type,
    )
    digest.update(repr(settings).encode())
    for name, tensor in sorted(generator.state_dict().items()):
        digest.update(name.encode())
        _update(digest, tensor)
    k, covered = 0, 0
    while covered < dataset.num_samples:  # every chunk's inputs (a chunk is as long as its noise)
        z, labels = dataset.chunk_inputs(k)
        _update(digest, z)
        if labels is not None:
            _update(digest, labels)
        k, covered = k + 1, covered + len(z)
    return digest.hexdigest()


def _read(path: Path, fingerprint: str, expected_items: int) -> dict[str, torch.Tensor] | None:
    """The cached tensors at ``path`` if it holds this fingerprint's items, else None (with a warning)."""
    try:
        saved = safe_torch_load(path, what="synthetic cache file")
    except (CorruptFileError, UnsafeFileError) as err:
        warnings.warn(f"{err}; generating its images again", stacklevel=3)
        return None
    tensors = saved.get("tensors") if isinstance(saved, dict) else None
    if (
        not isinstance(saved, dict)
        or saved.get("fingerprint") != fingerprint
        or not isinstance(tensors, dict)
    ):
        warnings.warn(
            f"synthetic cache file {path} holds other images (another generator, seed, count or sampling "
            "setting); generating them again and replacing it",
            stacklevel=3,
        )
        return None
    if any(not isinstance(t, torch.Tensor) or t.shape[0] != expected_items for t in tensors.values()):
        warnings.warn(
            f"synthetic cache file {path} has tensors of the wrong length; replacing it", stacklevel=3
        )
        return None
    return tensors


def load_or_generate(
    dataset: Any, path: str | os.PathLike, generate: Callable[[], dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """The materialized tensors of ``dataset``: read from ``path`` when it holds them, else made by
    ``generate()`` and written to ``path`` atomically (a kill leaves the old file or none)."""
    path = Path(path)
    fingerprint = dataset_fingerprint(dataset)
    if path.is_file():
        tensors = _read(path, fingerprint, dataset.num_samples)
        if tensors is not None:
            return tensors
    tensors = generate()
    atomic_torch_save({"fingerprint": fingerprint, "tensors": tensors}, path)
    return tensors
