"""What an exported bundle's inference writes: every item of a ``SyntheticDataset``, streamed to an ``.npz``
or a folder of PNG files (``configs/inference.json`` calls :func:`write_synthetic`)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from medgan_aug.bundle.files import png_folder_problem
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.utils.atomic import atomic_dir, atomic_path
from medgan_aug.utils.disk_space import require_free_space
from medgan_aug.utils.npz_stream import (
    WRITER_MEMBER,
    ArraySpec,
    NpzStreamWriter,
    npz_size,
    signed_by,
    writer_spec,
)
from medgan_aug.utils.outputs import check_output_file, check_output_folder
from medgan_aug.utils.temp_files import remove_orphan_temp_files, temp_prefix

__all__ = ["INFERENCE_WRITER", "write_synthetic"]


#: The signature of every ``.npz`` a bundle's inference writes (member ``medgan_aug_writer``).
INFERENCE_WRITER = "medgan_aug bundle inference"


_log = logging.getLogger(__name__)


def write_synthetic(dataset: SyntheticDataset, output: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write every item of ``dataset`` to ``output``, atomically, one ``batch_size`` block at a time.

    * ``*.npz``: ``images`` float32 ``(N, C, H, W)`` in [0, 1] (the items' exact values), ``labels`` float32
      ``(N, L)`` when items have labels, ``label_names`` (str, when known) and ``seed``. Arrays are stored
      (not deflated) and streamed (:class:`~medgan_aug.utils.npz_stream.NpzStreamWriter`): memory does not
      grow with N, and an output larger than the free disk space is refused before it is written. The file
      is signed (member ``medgan_aug_writer`` holds :data:`INFERENCE_WRITER`).
    * anything else is a folder: ``000000.png`` ... (8-bit, ``round(255 * image)``) and, with labels,
      ``labels.csv`` (``file`` then one column per label).

    ``overwrite`` replaces an existing ``.npz`` that this function wrote (it is signed), or a folder that
    holds only what this function writes there (PNG files and ``labels.csv``); any other file, or a folder
    with other files, is never replaced.

    Raises:
        FileExistsError: ``output`` exists (a signed file, or a non-empty folder of ours) and ``overwrite`` is
            False.
        medgan_aug.utils.errors.OutputNotOursError: ``output`` is a ``.npz`` this function did not write, a
            folder with other files (or a file where a folder goes, or a folder where a file goes),
            ``overwrite`` or not.
        medgan_aug.utils.errors.InsufficientDiskSpaceError: the ``.npz`` would not fit on its disk.
    """
    if not isinstance(dataset, SyntheticDataset):
        raise TypeError(f"dataset must be a SyntheticDataset, got {type(dataset).__name__}")
    output = Path(output)
    if output.suffix == ".npz":
        _check_npz(output, overwrite)
        _write_npz(dataset, output, overwrite)
        _log.info(f"wrote {len(dataset)} synthetic images (seed {dataset.seed}) to {output}")
    else:
        _check_png_folder(output, overwrite)
        _write_png_folder(dataset, output, overwrite)
        _log.info(f"wrote {len(dataset)} synthetic images (seed {dataset.seed}) as PNG files to {output}")
    return output


def _blocks(dataset: SyntheticDataset) -> range:
    """Start indices of the dataset's generation blocks (whole chunks of ``batch_size``)."""
    return range(0, len(dataset), dataset.block_size)


def _inference_npz_problem(path: Path) -> str | None:
    """None when ``path`` is a ``.npz`` this module wrote (signed :data:`INFERENCE_WRITER`), else why not."""
    return signed_by(path, INFERENCE_WRITER, "a medgan_aug bundle's inference")


def _check_npz(output: Path, overwrite: bool) -> None:
    replaceable = "a .npz written by a bundle's inference"
    check_output_file(output, overwrite, _inference_npz_problem, "output", replaceable)


def _write_npz(dataset: SyntheticDataset, output: Path, overwrite: bool) -> None:
    n, step = len(dataset), _blocks(dataset).step
    width = dataset.num_labels if dataset.has_labels else 0
    f4 = np.dtype(np.float32)
    specs: dict[str, ArraySpec] = {
        "images": (f4, (n, dataset.num_channels, dataset.image_size, dataset.image_size)),
        "seed": (np.dtype(np.int64), ()),
    }
    if width:
        specs["labels"] = (f4, (n, width))
    names = None if dataset.label_names is None else np.asarray(list(dataset.label_names), dtype=str)
    if names is not None:
        specs["label_names"] = (names.dtype, names.shape)
    specs[WRITER_MEMBER] = writer_spec(INFERENCE_WRITER)
    require_free_space(output, npz_size(specs) + n * width * f4.itemsize)  # the file and its label spool

    output.parent.mkdir(parents=True, exist_ok=True)
    remove_orphan_temp_files(output.parent, names=[output.name])  # of a killed run to this output
    spool = tempfile.TemporaryFile(prefix=f"{temp_prefix(output.name)}labels.", dir=output.parent)
    with atomic_path(output) as tmp, spool, NpzStreamWriter(tmp) as npz:
        with npz.stream("images", f4, specs["images"][1]) as images:
            for start in _blocks(dataset):
                batch = dataset.get_batch(np.arange(start, min(start + step, n)))
                images.write(batch["image"].numpy().astype(f4, copy=False))
                if width:
                    spool.write(batch["label"].numpy().astype(f4, copy=False).tobytes())
        npz.write("seed", np.asarray(dataset.seed, np.int64))
        if width:
            spool.seek(0)
            with npz.stream("labels", f4, (n, width)) as labels:
                labels.write_from(spool)
        if names is not None:
            npz.write("label_names", names)
        npz.mark(INFERENCE_WRITER)
        _check_npz(output, overwrite)  # again: something may have appeared meanwhile


def _write_png_folder(dataset: SyntheticDataset, output: Path, overwrite: bool) -> None:
    from PIL import Image

    n, step = len(dataset), _blocks(dataset).step
    with atomic_dir(output, may_replace=lambda path: _check_png_folder(path, overwrite)) as folder:
        csv = None
        try:
            for start in _blocks(dataset):
                batch = dataset.get_batch(np.arange(start, min(start + step, n)))
                pixels = np.round(np.clip(batch["image"].numpy(), 0.0, 1.0) * 255.0).astype(np.uint8)
                files = [f"{start + i:06d}.png" for i in range(len(pixels))]
                for name, img in zip(files, pixels):
                    Image.fromarray(img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)).save(
                        folder / name
                    )
                if "label" not in batch:
                    continue
                labels = batch["label"].numpy().astype(np.float32, copy=False)
                if csv is None:
                    csv = open(folder / "labels.csv", "w", encoding="utf-8")  # noqa: SIM115 (closed below)
                    names = dataset.label_names or [f"label_{j}" for j in range(labels.shape[1])]
                    csv.write(",".join(["file", *names]) + "\n")
                csv.writelines(
                    ",".join([f, *(f"{v:g}" for v in row)]) + "\n" for f, row in zip(files, labels)
                )
        finally:
            if csv is not None:
                csv.close()


def _check_png_folder(output: Path, overwrite: bool) -> None:
    replaceable = "a folder of PNG files written by write_synthetic"
    check_output_folder(output, overwrite, png_folder_problem, "output folder", replaceable)
