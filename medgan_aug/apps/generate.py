"""Write a trained generator's images as a MedMNIST-format ``.npz``, streamed chunk by chunk.

The file has the six MedMNIST keys, so anything that reads MedMNIST files (``medmnist``'s dataset
classes, :class:`medgan_aug.data.medmnist.MedMNISTDataset` with ``path=``) reads it unchanged:

* ``train_images`` uint8 ``(N, H, W)`` (``(N, H, W, C)`` for colour) = ``round(255 * image)``;
* ``train_labels`` uint8 ``(N, L)`` in the stored MedMNIST form: multi-hot / 0-1 thresholded at 0.5
  (soft labeller outputs too), class index ``(N, 1)`` (argmax) for multi-class / ordinal tasks;
* ``val_*`` and ``test_*``: empty ``(0, ...)`` arrays of the same dtypes and trailing shapes --
  synthetic data is for training; evaluate on real val/test splits.

Item ``i`` of the file is item ``i`` of ``SyntheticDataset.from_run(run, num, seed=seed)`` (quantized to
uint8), so the same command writes the same items.

Memory does not grow with ``N``: images are generated one ``batch_size`` block at a time and streamed into
the ``train_images`` member (:class:`medgan_aug.utils.npz_stream.NpzStreamWriter`); their labels wait in an
unnamed temporary file beside the output until the images are done. Members are stored, not deflated
(MedMNIST's own files are deflated; ``np.load`` reads both), so the file's size is known up front: an
output larger than the free disk space is refused before anything is written. The file is written
atomically (:func:`medgan_aug.utils.atomic.atomic_path`): an interrupted run leaves the old file, or none,
and the temporary file a killed run left beside the output is removed by the next run to that output.

The file is signed: a member ``medgan_aug_writer`` holds :data:`GENERATE_WRITER`
(:meth:`medgan_aug.utils.npz_stream.NpzStreamWriter.mark`). ``overwrite`` replaces only a signed file;
any other file at the output (a user's data set, a MedMNIST download, a folder, a link) is refused,
``overwrite`` or not (:func:`medgan_aug.utils.outputs.check_output_file`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.utils.atomic import atomic_path
from medgan_aug.utils.disk_space import require_free_space
from medgan_aug.utils.npz_stream import (
    WRITER_MEMBER,
    ArraySpec,
    NpzStreamWriter,
    npz_size,
    signed_by,
    writer_spec,
)
from medgan_aug.utils.outputs import check_output_file
from medgan_aug.utils.temp_files import remove_orphan_temp_files, temp_prefix
from medgan_aug.utils.validation import is_integer

__all__ = [
    "GENERATE_WRITER",
    "GeneratedFile",
    "generated_npz_problem",
    "medmnist_rows",
    "medmnist_npz_size",
    "write_medmnist_npz",
    "generate_medmnist",
]

_SOFTMAX_TASKS = ("multi-class", "ordinal-regression")

#: The signature of every file ``generate`` writes (member ``medgan_aug_writer``).
GENERATE_WRITER = "medgan_aug generate"

_REPLACEABLE = "a .npz written by medgan-aug generate"


@dataclass(frozen=True)
class GeneratedFile:
    """What :func:`write_medmnist_npz` wrote.

    Attributes:
        path: the ``.npz`` file.
        num_images: N.
        image_shape: one stored image, ``(H, W)`` or ``(H, W, C)``.
        label_counts: images per label (multi-label: positives per finding) or per class (binary,
            multi-class, ordinal: counts of each stored class index).
        seed: the dataset's seed.
        source: the generator file the images come from (None for a dataset built from a module).
    """

    path: Path
    num_images: int
    image_shape: tuple[int, ...]
    label_counts: list[int]
    seed: int
    source: Path | None


def generated_npz_problem(path: Path) -> str | None:
    """None when the file ``path`` is a ``.npz`` that ``generate`` wrote (it carries :data:`GENERATE_WRITER`),
    else why it is not, for messages."""
    return signed_by(path, GENERATE_WRITER, "medgan-aug generate")


def _check_out(path: Path, overwrite: bool, what: str) -> None:
    check_output_file(path, overwrite, generated_npz_problem, what, _REPLACEABLE)


def medmnist_rows(batch: dict[str, torch.Tensor], task: str) -> tuple[np.ndarray, np.ndarray]:
    """A ``SyntheticDataset`` batch as MedMNIST-stored rows ``(images uint8, labels uint8)``.

    Args:
        batch: ``{"image": (n, C, H, W) in [0, 1], "label": (n, L)}``.
        task: the MedMNIST task string; multi-class and ordinal tasks store the argmax ``(n, 1)``, all
            others the labels thresholded at 0.5 ``(n, L)``.
    """
    img = torch.round(batch["image"].clamp(0, 1) * 255).to(torch.uint8)
    img = img[:, 0] if img.shape[1] == 1 else img.permute(0, 2, 3, 1)
    lab = batch["label"]
    lab = lab.argmax(1, keepdim=True) if task in _SOFTMAX_TASKS else lab >= 0.5
    return img.contiguous().numpy(), lab.to(torch.uint8).numpy()


def _medmnist_specs(num: int, image_shape: tuple[int, ...], label_columns: int) -> dict[str, ArraySpec]:
    u8 = np.dtype(np.uint8)
    specs: dict[str, ArraySpec] = {}
    for split, n in (("train", num), ("val", 0), ("test", 0)):
        specs[f"{split}_images"] = (u8, (n, *image_shape))
        specs[f"{split}_labels"] = (u8, (n, label_columns))
    specs[WRITER_MEMBER] = writer_spec(GENERATE_WRITER)
    return specs


def medmnist_npz_size(num: int, image_shape: tuple[int, ...], label_columns: int) -> int:
    """Upper bound of the size of the file :func:`write_medmnist_npz` writes (within a few hundred bytes)."""
    return npz_size(_medmnist_specs(num, image_shape, label_columns))


def write_medmnist_npz(
    dataset: SyntheticDataset, path: str | os.PathLike, overwrite: bool = False, progress: bool = True
) -> GeneratedFile:
    """Stream every item of ``dataset`` into ``path`` as the train split of a MedMNIST ``.npz``, atomically.

    Memory: one ``dataset.batch_size`` block plus the dataset's chunk cache (``cache_bytes``; build the
    dataset with ``cache_bytes=0`` to keep only the current block), whatever ``len(dataset)``.

    Args:
        dataset: the items; they need labels (a conditional generator, or a labeller).
        path: the output, ending in ``.npz``; its folder is created if needed.
        overwrite: replace an existing ``path`` that this function wrote (it carries
            :data:`GENERATE_WRITER`); any other file is never replaced.
        progress: show a progress bar.

    Raises:
        ValueError: ``path`` does not end in ``.npz``, or the items have no labels.
        FileExistsError: ``path`` is a file this function wrote and ``overwrite`` is False.
        medgan_aug.utils.errors.OutputNotOursError: ``path`` is any other file (or a folder, or a link),
            ``overwrite`` or not; the message names it.
        InsufficientDiskSpaceError: the file (and its temporary label file) would not fit on the disk.
        OSError: the file could not be written; names ``path``.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"output file {path} must end in .npz (MedMNIST format)")
    _check_out(path, overwrite, "output file")
    if not dataset.has_labels:
        raise ValueError("the generator is unconditional and has no labeller: a MedMNIST file needs labels")
    n, task = len(dataset), str(dataset.meta.get("task", ""))
    size = dataset.image_size
    image_shape = (size, size) if dataset.num_channels == 1 else (size, size, dataset.num_channels)
    columns = 1 if task in _SOFTMAX_TASKS else dataset.num_labels
    require_free_space(path, medmnist_npz_size(n, image_shape, columns) + n * columns)
    counts = np.zeros(dataset.num_labels if columns == 1 else columns, np.int64)
    block = dataset.block_size

    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphan_temp_files(path.parent, names=[path.name])  # of a killed run to this output
    spool = tempfile.TemporaryFile(prefix=f"{temp_prefix(path.name)}labels.", dir=path.parent)
    with atomic_path(path) as tmp, spool, NpzStreamWriter(tmp) as npz:
        with npz.stream("train_images", np.uint8, (n, *image_shape)) as images:
            for start in tqdm(range(0, n, block), desc="generate", unit="block", disable=not progress):
                batch = dataset.get_batch(np.arange(start, min(start + block, n)))
                img, lab = medmnist_rows(batch, task)
                images.write(img)
                spool.write(lab.tobytes())
                counts = _add_counts(counts, lab)
        spool.seek(0)
        with npz.stream("train_labels", np.uint8, (n, columns)) as labels:
            labels.write_from(spool)
        for split in ("val", "test"):
            npz.write(f"{split}_images", np.zeros((0, *image_shape), np.uint8))
            npz.write(f"{split}_labels", np.zeros((0, columns), np.uint8))
        npz.mark(GENERATE_WRITER)
        _check_out(path, overwrite, "output file")  # again: something may have appeared meanwhile
    return GeneratedFile(path, n, image_shape, counts.tolist(), dataset.seed, dataset.source)


def _add_counts(counts: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-label positives (several columns) or per-class counts (one column), added to ``counts``."""
    if labels.shape[1] > 1:
        return counts + labels.sum(0, dtype=np.int64)
    found = np.bincount(labels[:, 0], minlength=len(counts))
    if len(found) > len(counts):
        counts = np.pad(counts, (0, len(found) - len(counts)))
    return counts + found


def generate_medmnist(
    run: str | os.PathLike,
    num: int,
    out: str | os.PathLike,
    seed: int = 0,
    balanced: bool = False,
    overwrite: bool = False,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> GeneratedFile:
    """Write ``num`` images of a training run's generator to ``out`` (MedMNIST ``.npz``): ``medgan-aug generate``.

    Args:
        run: a run directory holding ``generator.pt``, or a generator file.
        num: number of images.
        out: the output ``.npz``.
        seed: image ``i`` depends only on ``(seed, i)``.
        balanced: class-balanced conditioning labels (rare findings raised) instead of resampling the run's
            real label vectors.
        overwrite: replace an existing ``out`` that ``generate`` wrote (never another file).
        batch_size: images generated per step (does not change any image).
        device: where the generator runs.
        progress: show a progress bar.

    Returns:
        What was written.

    Raises:
        ValueError, FileExistsError, OutputNotOursError, InsufficientDiskSpaceError, OSError: as
            :func:`write_medmnist_npz`;
            FileNotFoundError / ValueError for a missing or unusable run.
    """
    out = Path(out)
    if out.suffix != ".npz":
        raise ValueError(f"--out {out} must end in .npz (MedMNIST format)")
    _check_out(out, overwrite, "--out")
    if not is_integer(num) or num < 1:
        raise ValueError(f"--num must be a positive number of images, got {num}")
    dataset = SyntheticDataset.from_run(
        run,
        int(num),
        label_sampler="balanced" if balanced else None,
        seed=seed,
        batch_size=batch_size,
        device=device,
        cache_bytes=0,  # keep one block: the file, not the cache, holds the images
    )
    return write_medmnist_npz(dataset, out, overwrite=overwrite, progress=progress)
