"""``medgan-aug generate``: write a trained generator's images as a MedMNIST-format ``.npz``.

The file has the six MedMNIST keys, so anything that reads MedMNIST files (``medmnist``'s dataset
classes, :class:`medgan_aug.data.medmnist.MedMNISTDataset` with ``path=``) reads it unchanged:

* ``train_images`` uint8 ``(N, H, W)`` (``(N, H, W, C)`` for colour) = ``round(255 * image)``;
* ``train_labels`` uint8 ``(N, L)`` in the stored MedMNIST form: multi-hot / 0-1 thresholded at 0.5
  (soft labeller outputs too), class index ``(N, 1)`` (argmax) for multi-class / ordinal tasks;
* ``val_*`` and ``test_*``: empty ``(0, ...)`` arrays of the same dtypes and trailing shapes --
  synthetic data is for training; evaluate on real val/test splits.

Item ``i`` of the file is item ``i`` of ``SyntheticDataset.from_run(run, num, seed=seed)`` (quantized to
uint8), so the same command writes the same bytes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from medgan_aug.data.synthetic import CHUNK_SIZE, SyntheticDataset

__all__ = ["register", "run_generate", "synthetic_arrays", "write_medmnist_npz"]

_SOFTMAX_TASKS = ("multi-class", "ordinal-regression")


def synthetic_arrays(dataset: SyntheticDataset, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All items of ``dataset`` as MedMNIST-stored arrays ``(images uint8, labels uint8)``."""
    if not dataset.has_labels:
        raise ValueError("the generator is unconditional and has no labeller: a MedMNIST file needs labels")
    n = len(dataset)
    task = str(dataset.meta.get("task", ""))
    images, labels = [], []
    for start in tqdm(range(0, n, CHUNK_SIZE), desc="generate", unit="chunk", disable=not progress):
        batch = dataset.get_batch(np.arange(start, min(start + CHUNK_SIZE, n)))
        img = torch.round(batch["image"].clamp(0, 1) * 255).to(torch.uint8)
        img = img[:, 0] if img.shape[1] == 1 else img.permute(0, 2, 3, 1)
        images.append(img.numpy())
        lab = batch["label"]
        if task in _SOFTMAX_TASKS:
            lab = lab.argmax(1, keepdim=True)
        else:
            lab = lab >= 0.5
        labels.append(lab.to(torch.uint8).numpy())
    return np.concatenate(images), np.concatenate(labels)


def write_medmnist_npz(
    path: str | os.PathLike, images: np.ndarray, labels: np.ndarray, overwrite: bool = False
) -> Path:
    """Write ``images``/``labels`` as the train split of a MedMNIST ``.npz`` (empty val/test), atomically.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: ``path`` does not end in ``.npz`` or the arrays are not uint8 (N, ...) with equal N.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"output file {path} must end in .npz (MedMNIST format)")
    if images.dtype != np.uint8 or labels.dtype != np.uint8 or len(images) != len(labels) or labels.ndim != 2:
        raise ValueError(
            f"expected uint8 images (N, H, W[, C]) and uint8 labels (N, L), got {images.dtype} "
            f"{images.shape} "
            f"and {labels.dtype} {labels.shape}"
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"train_images": images, "train_labels": labels}
    for split in ("val", "test"):
        arrays[f"{split}_images"] = np.zeros((0, *images.shape[1:]), np.uint8)
        arrays[f"{split}_labels"] = np.zeros((0, labels.shape[1]), np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        if path.exists() and not overwrite:  # appeared meanwhile
            raise FileExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def run_generate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix != ".npz":
        raise ValueError(f"--out {out} must end in .npz (MedMNIST format)")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"--out {out} exists; pass --overwrite to replace it")
    if args.num < 1:
        raise ValueError(f"--num must be a positive number of images, got {args.num}")
    dataset = SyntheticDataset.from_run(
        args.run,
        args.num,
        label_sampler="balanced" if args.balanced else None,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
    )
    images, labels = synthetic_arrays(dataset, progress=not args.quiet)
    write_medmnist_npz(out, images, labels, overwrite=args.overwrite)
    positives = labels.sum(0) if labels.shape[1] > 1 else np.bincount(labels[:, 0])
    print(
        f"wrote {out}: {len(images)} synthetic images {images.shape[1:]} from {dataset.source} "
        f"(seed {args.seed}, labels {'balanced' if args.balanced else 'joint resampling'}); "
        f"per-label counts: {positives.tolist()}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write synthetic images from a trained generator as a MedMNIST-format .npz",
        description="Write a trained generator's images as a MedMNIST-format .npz (empty val/test splits).",
    )
    parser.add_argument("--run", required=True, help="training run directory (or its generator.pt)")
    parser.add_argument("--num", type=int, required=True, help="number of images")
    parser.add_argument("--seed", type=int, default=0, help="seed: image i depends only on (seed, i)")
    parser.add_argument("--out", required=True, help="output .npz (MedMNIST layout; train split)")
    parser.add_argument(
        "--balanced",
        action="store_true",
        help="class-balanced labels (rare findings raised); default resamples the run's real label vectors",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--batch-size", type=int, default=256, help="images generated per step")
    parser.add_argument("--device", default="cpu", help="torch device for the generator")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_generate)
