"""The generator's training pool: the labelled subset, or the labelled subset plus unlabelled X-rays.

A low-data run has few labelled images but often many unlabelled ones, and a generator can learn what
X-rays look like from those too (a GAN on the whole training set at 10% of the labels: Sundaram & Hulkund
2021; diffusion on labelled plus unlabelled images: Ktena et al., Nature Medicine 2024). ``pool`` says which
images the generator trains on:

* ``"labelled"`` (the default): exactly the labelled subset ``low_data_indices(train labels, fraction,
  subset_seed)``, in subset order, all labelled (the behaviour before pools existed).
* ``"train"``: every image of the data file's train split, in file order; only the labelled subset's rows
  carry their labels.
* a path: the labelled subset (labelled, first) followed by the images of a user's file: an ``.npz`` with an
  ``images`` array ``(N, H, W)`` uint8 (``(N, H, W, C)`` for colour flags), or a MedMNIST-format file whose
  ``train_images`` are used. Labels in the file are ignored (one warning says so); its images identical to a
  labelled-subset image are dropped (they are already in the pool, labelled).

Val and test images never enter a pool: ``"train"`` reads the train split only, and a pool file holding an
image identical (byte for byte) to a val or test image of the data file is refused. Every problem with a
pool file is one :class:`~medgan_aug.utils.errors.MedMNISTFileError` line naming the file.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan_aug.data.batches import SeededBatches
from medgan_aug.data.medmnist import MedMNISTDataset, load_medmnist_npz
from medgan_aug.data.npz_arrays import check_declared_sizes
from medgan_aug.utils.errors import MedMNISTFileError
from medgan_aug.utils.files import file_md5

__all__ = [
    "POOL_LABELLED",
    "POOL_TRAIN",
    "POOL_NAMES",
    "GeneratorPool",
    "check_pool_setting",
    "pool_label",
    "read_pool_file",
    "load_generator_pool",
    "PoolBatches",
]

#: The default pool: the labelled subset only.
POOL_LABELLED = "labelled"
#: Every image of the data file's train split.
POOL_TRAIN = "train"
#: The named pools; any other value is a pool file's path.
POOL_NAMES = (POOL_LABELLED, POOL_TRAIN)


@dataclass
class GeneratorPool:
    """The images a generator trains on and which of them are labelled.

    Attributes:
        images: uint8 ``(N, H, W)`` (or ``(N, H, W, C)``), as stored in the files.
        labelled: bool ``(N,)``: the rows that are labelled-subset images.
        subset_rows: int64 ``(N,)``: for a labelled row its position in the labelled subset, else -1.
        info: what the run records: ``pool`` (the setting), ``source``/``source_md5`` (a pool file),
            ``num_images``, ``num_labelled``, ``num_unlabelled``, ``images_sha256`` (of the images and the mask).
    """

    images: np.ndarray
    labelled: np.ndarray
    subset_rows: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def targets(self, subset_targets: np.ndarray) -> np.ndarray:
        """Label vectors per pool row: the labelled subset's ``subset_targets`` on labelled rows, zeros on
        unlabelled ones (never read there: the mask says which rows carry a label)."""
        out = np.zeros((len(self.images), *subset_targets.shape[1:]), dtype=subset_targets.dtype)
        out[self.labelled] = subset_targets[self.subset_rows[self.labelled]]
        return out


def check_pool_setting(pool: Any, name: str = "pool") -> str:
    """``pool`` as a string: ``"labelled"``, ``"train"`` or a pool file's path (not checked for existence).

    Raises:
        ValueError: not a non-empty string or path; the message names ``name``.
    """
    if isinstance(pool, os.PathLike):
        pool = os.fspath(pool)
    if not isinstance(pool, str) or not pool.strip():
        raise ValueError(
            f"{name} must be 'labelled', 'train' or the path of a pool file (.npz), got {pool!r}"
        )
    return pool


def pool_label(pool: str) -> str:
    """How a run's table names its pool: ``labelled``, ``train`` or the pool file's name."""
    return pool if pool in POOL_NAMES else Path(pool).name


def _images_digest(images: np.ndarray, labelled: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    digest.update(np.asarray(labelled, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def _row_keys(images: np.ndarray) -> list[bytes]:
    """One key per image: its bytes' digest (equal keys: byte-identical images)."""
    return [hashlib.sha1(np.ascontiguousarray(image).tobytes()).digest() for image in images]


def read_pool_file(path: str | os.PathLike, size: int, channels: int = 1) -> tuple[np.ndarray, bool]:
    """Read and validate the images of a pool file.

    Args:
        path: an ``.npz`` with ``images`` ``(N, H, W)`` uint8 (``(N, H, W, C)`` for ``channels`` C > 1), or a
            MedMNIST-format ``.npz`` (its ``train_images``).
        size: the run's image size (H = W = size).
        channels: the data's channel count.

    Returns:
        ``(images, has_labels)``: the uint8 images and whether the file also holds labels (ignored).

    Raises:
        MedMNISTFileError: the file is missing, a folder, not a readable ``.npz``, has neither array, or its
            images are empty, not uint8, or not ``size`` x ``size`` (with ``channels``); one line naming the file.
    """
    path = Path(path)
    what = f"pool file {path}"
    if path.is_dir():
        raise MedMNISTFileError(f"{what} is a folder, not an .npz file")
    if not path.is_file():
        raise MedMNISTFileError(f"{what} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            key = "images" if "images" in keys else "train_images" if "train_images" in keys else None
            if key is None:
                raise MedMNISTFileError(
                    f"{what} has no 'images' array (N, H, W) uint8 and no MedMNIST 'train_images' "
                    f"(found: {sorted(keys)})"
                )
            check_declared_sizes(path, npz.zip, [key])
            images = npz[key]
            has_labels = any(k == "labels" or k.endswith("_labels") for k in keys)
    except MedMNISTFileError as err:
        message = str(err)
        if not message.startswith(what):  # check_declared_sizes names the bare path
            message = f"{what}: {message.removeprefix(f'{path}: ')}"
        raise MedMNISTFileError(message) from err
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise MedMNISTFileError(
            f"{what} is not a readable .npz (truncated or not a zip archive): {err}"
        ) from err
    if images.dtype != np.uint8:
        raise MedMNISTFileError(f"{what}: {key} has dtype {images.dtype}, expected uint8 (0..255)")
    layout = "(N, H, W)" if channels == 1 else f"(N, H, W, {channels})"
    if images.ndim != (3 if channels == 1 else 4) or (channels > 1 and images.shape[3] != channels):
        raise MedMNISTFileError(f"{what}: {key} has shape {images.shape}, expected {layout}")
    if len(images) == 0:
        raise MedMNISTFileError(f"{what}: {key} is empty (shape {images.shape}); a pool needs images")
    if images.shape[1:3] != (size, size):
        raise MedMNISTFileError(
            f"{what}: images are {images.shape[1]}x{images.shape[2]} but the run's size is {size}"
        )
    return images, has_labels


def _held_out_rows(path: Path, images: np.ndarray, data: MedMNISTDataset) -> list[tuple[int, str]]:
    """Rows of ``images`` byte-identical to a val or test image of ``data``'s file, with that split."""
    held_out: dict[bytes, str] = {}
    for split in ("val", "test"):
        split_images, _ = load_medmnist_npz(data.source, split, data.flag)
        held_out.update(dict.fromkeys(_row_keys(split_images), split))
    return [(row, held_out[key]) for row, key in enumerate(_row_keys(images)) if key in held_out]


def load_generator_pool(pool: str, train: MedMNISTDataset, indices: np.ndarray) -> GeneratorPool:
    """The pool ``pool`` of a run whose labelled subset is rows ``indices`` of the train split ``train``.

    Args:
        pool: ``"labelled"``, ``"train"`` or a pool file's path (module docstring).
        train: the train split of the run's data file.
        indices: the labelled subset's rows of ``train`` (:func:`~medgan_aug.data.low_data_indices`).

    Raises:
        MedMNISTFileError: a bad pool file, or one holding val/test images of the data file (one line).
    """
    pool = check_pool_setting(pool)
    indices = np.asarray(indices, dtype=np.int64)
    n = len(indices)
    info: dict[str, Any] = {"pool": pool, "source": None, "source_md5": None}
    if pool == POOL_LABELLED:
        images, labelled, rows = train.images[indices], np.ones(n, bool), np.arange(n, dtype=np.int64)
    elif pool == POOL_TRAIN:
        images = train.images
        labelled = np.zeros(len(images), bool)
        labelled[indices] = True
        rows = np.full(len(images), -1, dtype=np.int64)
        rows[indices] = np.arange(n, dtype=np.int64)
    else:
        path = Path(pool)
        extra, has_labels = read_pool_file(path, train.size, train.num_channels)
        leaked = _held_out_rows(path, extra, train)
        if leaked:
            row, split = leaked[0]
            raise MedMNISTFileError(
                f"pool file {path}: {len(leaked)} of its images are val/test images of the data file "
                f"{train.source} (first: row {row}, a {split} image); val and test images never enter a pool: "
                "remove them"
            )
        if has_labels:
            warnings.warn(
                f"pool file {path} holds labels: they are ignored (the pool's images train the generator "
                "unlabelled; only the labelled subset's labels are used)",
                stacklevel=3,
            )
        subset = train.images[indices]
        known = set(_row_keys(subset))
        keep = np.array([key not in known for key in _row_keys(extra)], dtype=bool)
        images = np.concatenate([subset, extra[keep]])
        labelled = np.arange(len(images)) < n
        rows = np.where(labelled, np.arange(len(images)), -1).astype(np.int64)
        info.update(source=os.fspath(path), source_md5=file_md5(path), dropped_duplicates=int((~keep).sum()))
    images = np.ascontiguousarray(images)
    info.update(
        num_images=int(len(images)),
        num_labelled=int(labelled.sum()),
        num_unlabelled=int((~labelled).sum()),
        images_sha256=_images_digest(images, labelled),
    )
    return GeneratorPool(images, labelled, rows, info)


class PoolBatches(SeededBatches):
    """:class:`SeededBatches` whose batches also carry ``"labelled"``: a ``(B,)`` bool tensor saying which
    rows are labelled-subset images. Same order as ``SeededBatches`` with the same seed.

    Args:
        images, labels, batch_size, seed: as for :class:`SeededBatches` (``labels`` zeros on unlabelled rows).
        labelled: bool ``(N,)`` tensor, one flag per image.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None,
        labelled: torch.Tensor,
        batch_size: int,
        seed: int,
    ) -> None:
        super().__init__(images, labels, batch_size, seed)
        if labelled.dtype != torch.bool or labelled.shape != (len(images),):
            raise ValueError(
                f"labelled must be a bool tensor of shape ({len(images)},), got {labelled.dtype} "
                f"{tuple(labelled.shape)}"
            )
        self.labelled = labelled

    def batch(self, iteration: int) -> dict[str, torch.Tensor]:
        out = super().batch(iteration)
        idx = torch.from_numpy(self.indices(iteration)).to(self.labelled.device)
        out["labelled"] = self.labelled[idx]
        return out
