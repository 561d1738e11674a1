"""MedMNIST data layer: validated loading of MedMNIST ``.npz`` files as MONAI dict datasets.

Files come from the medmnist package's own download path (its ``INFO`` table gives the URL and MD5
of every flag and size) or from a user's MedMNIST-format file given by ``path``. Every file read here
is validated, and every problem is reported with the file name and what is wrong, instead of a bare
traceback from numpy or zipfile.

Label form (the float vector every item carries under ``"label"``), decided by the medmnist task:

* ``multi-label, binary-class`` (ChestMNIST): multi-hot ``(L,)``, e.g. 14 findings.
* ``binary-class`` (PneumoniaMNIST, BreastMNIST): ``(1,)`` holding 0.0 or 1.0, for BCE-with-logits.
* ``multi-class`` and ``ordinal-regression``: one-hot ``(C,)`` over the C classes.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import Dataset

from medgan_aug.data.npz_arrays import check_declared_sizes
from medgan_aug.data.patients import split_patients
from medgan_aug.data.samples import SAMPLES, sample_flag, sample_path
from medgan_aug.utils.errors import MedMNISTFileError
from medgan_aug.utils.files import file_md5
from medgan_aug.utils.tasks import BINARY, MULTI_LABEL

__all__ = [
    "SPLITS",
    "flag_info",
    "official_file",
    "file_md5",
    "load_medmnist_npz",
    "label_vectors",
    "MedMNISTDataset",
    "output_names",
]


SPLITS = ("train", "val", "test")


def flag_info(flag: str) -> dict[str, Any]:
    """Return medmnist's ``INFO`` entry for a 2D flag, with a clear error for unknown or 3D flags."""
    from medmnist.info import INFO

    if not isinstance(flag, str) or flag not in INFO:
        flags_2d = sorted(k for k in INFO if not k.endswith("3d"))
        raise ValueError(f"unknown MedMNIST flag {flag!r}; 2D flags are: {', '.join(flags_2d)}")
    if flag.endswith("3d"):
        raise ValueError(f"flag {flag!r} is a 3D MedMNIST dataset; medgan_aug handles 2D flags only")
    return INFO[flag]


def _size_suffix(size: int) -> str:
    return "" if size == 28 else f"_{size}"


def _check_size(flag: str, size: int) -> None:
    from medmnist.dataset import MedMNIST2D

    if size not in MedMNIST2D.available_sizes:
        raise ValueError(
            f"size={size!r} is not offered for {flag!r}; MedMNIST 2D sizes are {MedMNIST2D.available_sizes}"
        )


def official_file(flag: str, size: int, root: str | os.PathLike) -> tuple[Path, str, str]:
    """Where medmnist keeps ``flag`` at ``size`` under ``root``, with its download URL and MD5."""
    info = flag_info(flag)
    _check_size(flag, size)
    suffix = _size_suffix(size)
    return Path(root) / f"{flag}{suffix}.npz", info[f"url{suffix}"], info[f"MD5{suffix}"]


def _download(flag: str, size: int, root: Path) -> None:
    """Fetch an official file through medmnist's own dataset class (``download=True``): its URL, MD5 check."""
    import medmnist

    target, url, md5 = official_file(flag, size, root)
    root.mkdir(parents=True, exist_ok=True)
    dataset_class = getattr(medmnist, flag_info(flag)["python_class"])
    try:
        dataset_class(split="train", download=True, root=str(root), size=size)
    except RuntimeError as err:
        raise FileNotFoundError(
            f"could not download {target.name} for flag {flag!r} (are you offline?). "
            f"Fetch it by hand from {url} (MD5 {md5}) and put it at {target}. medmnist said: "
            + " ".join(str(err).split())
        ) from err


def _resolve_official(flag: str, size: int, root: str | os.PathLike | None, download: bool) -> Path:
    from medmnist.info import DEFAULT_ROOT

    root_path = Path(root if root is not None else DEFAULT_ROOT).expanduser()
    target, url, md5 = official_file(flag, size, root_path)
    if download and not target.exists():
        _download(flag, size, root_path)
    if not target.exists():
        raise FileNotFoundError(
            f"MedMNIST file {target} not found. Pass download=True (CLI: --download), or fetch it from "
            f"{url} (MD5 {md5}) and put it at {target}; a MedMNIST-format file elsewhere can be given by path."
        )
    actual = file_md5(target)
    if actual != md5:
        raise MedMNISTFileError(
            f"MD5 mismatch for {target}: expected {md5} (medmnist INFO for {flag!r}, size {size}) but the file "
            f"has {actual}. The file is incomplete or not the official release; delete it and download again."
        )
    return target


def _validate_split(
    path: Path, images: np.ndarray, labels: np.ndarray, split: str, info: dict, flag: str
) -> None:
    channels = int(info["n_channels"])
    expected_ndim = 3 if channels == 1 else 4
    if images.dtype != np.uint8:
        raise MedMNISTFileError(f"{path}: {split}_images has dtype {images.dtype}, expected uint8 (0..255)")
    if (
        images.ndim != expected_ndim
        or images.shape[1] != images.shape[2]
        or (channels > 1 and images.shape[3] != channels)
    ):
        layout = "(N, H, W)" if channels == 1 else f"(N, H, W, {channels})"
        raise MedMNISTFileError(
            f"{path}: {split}_images has shape {images.shape}, expected square images {layout} for {flag!r}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise MedMNISTFileError(f"{path}: {split}_labels has dtype {labels.dtype}, expected an integer type")
    if labels.ndim != 2 or labels.shape[0] != images.shape[0]:
        raise MedMNISTFileError(
            f"{path}: {split}_labels has shape {labels.shape}, expected ({images.shape[0]}, L) "
            f"to match {split}_images"
        )
    n_names = len(info["label"])
    width = n_names if info["task"] == MULTI_LABEL else 1
    if labels.shape[1] != width:
        raise MedMNISTFileError(
            f"{path}: {split}_labels has {labels.shape[1]} columns but flag {flag!r} ({info['task']}) "
            f"has {width}; is this the right file for flag={flag!r}?"
        )
    top = 1 if info["task"] in (MULTI_LABEL, BINARY) else n_names - 1
    if labels.size and (labels.min() < 0 or labels.max() > top):
        raise MedMNISTFileError(
            f"{path}: {split}_labels has values in [{labels.min()}, {labels.max()}], expected 0..{top} for {flag!r}"
        )


def load_medmnist_npz(
    path: str | os.PathLike, split: str, flag: str = "chestmnist"
) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate one split of a MedMNIST-format ``.npz``.

    Args:
        path: the ``.npz`` file.
        split: ``"train"``, ``"val"`` or ``"test"``.
        flag: the MedMNIST flag whose layout (channels, label width, task) the file must have.

    Returns:
        ``(images, labels)``: uint8 ``(N, H, W)`` (or ``(N, H, W, 3)``) and integer ``(N, L)`` arrays.

    Raises:
        FileNotFoundError: the file does not exist.
        MedMNISTFileError: the path is a directory, the file is not a readable zip/npz, lacks the split's keys,
            declares arrays larger than it holds or than memory, or has the wrong layout.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    info = flag_info(flag)
    path = Path(path)
    if path.is_dir():
        raise MedMNISTFileError(f"{path} is a directory, not a MedMNIST .npz file")
    if not path.is_file():
        raise FileNotFoundError(f"MedMNIST file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            wanted = (f"{split}_images", f"{split}_labels")
            missing = [k for k in wanted if k not in keys]
            if missing:
                raise MedMNISTFileError(
                    f"{path}: missing key(s) {missing}; a MedMNIST file has train/val/test _images and _labels "
                    f"(found: {sorted(keys)})"
                )
            check_declared_sizes(path, npz.zip, wanted)  # before np.load allocates what a header claims
            images, labels = npz[wanted[0]], npz[wanted[1]]
    except MedMNISTFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise MedMNISTFileError(
            f"{path} is not a readable MedMNIST .npz (truncated or not a zip archive): {err}"
        ) from err
    _validate_split(path, images, labels, split, info, flag)
    return images, labels


def label_vectors(labels: np.ndarray, task: str, num_classes: int) -> np.ndarray:
    """Turn stored MedMNIST labels into the float32 label vectors items carry (see the module docstring)."""
    if task in (MULTI_LABEL, BINARY):
        return labels.astype(np.float32)
    return np.eye(num_classes, dtype=np.float32)[labels[:, 0].astype(np.int64)]


class _Items(Sequence):
    """Builds item dicts on demand from uint8 arrays, so a dataset never holds N float tensors."""

    def __init__(self, images: np.ndarray, targets: np.ndarray) -> None:
        self.images, self.targets = images, targets

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:  # type: ignore[override]
        image = torch.from_numpy(np.ascontiguousarray(self.images[index])).float().div_(255.0)
        image = image.unsqueeze(0) if image.ndim == 2 else image.permute(2, 0, 1).contiguous()
        return {"image": image, "label": torch.from_numpy(self.targets[index].copy())}


class MedMNISTDataset(Dataset):
    """One split of a 2D MedMNIST dataset as a MONAI dataset of ``{"image", "label"}`` dicts.

    Items: ``image`` float32 ``(C, H, W)`` in [0, 1], ``label`` float32 ``(L,)`` (form: module docstring).

    Args:
        flag: MedMNIST flag (default ``"chestmnist"``); any 2D flag works.
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: image size. With ``path`` it must match the file (None: take the file's); otherwise one of
            medmnist's sizes (28, 64, 128, 224; None means 28).
        root: medmnist data folder holding the official ``{flag}[_{size}].npz`` (default ``~/.medmnist``);
            the file is checked against medmnist's MD5.
        path: a user's MedMNIST-format ``.npz``; validated for layout instead of MD5.
        sample: the name of a real sample shipped inside the package (``"nih1000"``: 1,000 NIH chest
            X-rays at 28 px, :mod:`medgan_aug.data.samples`); instead of ``path``/``root``.
        download: fetch the official file into ``root`` through medmnist's download path if missing.
        indices: optional row indices of the split to keep (e.g. from :func:`low_data_indices`).
        transform: MONAI (dict) transform applied to every item.

    Attributes:
        images: uint8 ``(N, H, W)`` (or ``(N, H, W, C)``); labels: the stored integer labels ``(N, L)``;
        targets: float32 label vectors ``(N, L')``; label_names, task, flag, split, size, num_labels,
        num_channels, indices, source (the file read); patients: one patient id (str) per item where the file
        says (a ``{split}_patients`` array, or the NIH1000 files: :mod:`medgan_aug.data.patients`), else None.
    """

    def __init__(
        self,
        flag: str = "chestmnist",
        split: str = "train",
        size: int | None = None,
        root: str | os.PathLike | None = None,
        path: str | os.PathLike | None = None,
        download: bool = False,
        indices: Sequence[int] | np.ndarray | None = None,
        transform: Callable | None = None,
        sample: str | None = None,
    ) -> None:
        if sample is not None:
            if path is not None or root is not None or download:
                raise ValueError("give one data source: sample=, path= or root=/download=")
            if flag != sample_flag(sample):
                raise ValueError(
                    f"sample {sample!r} is {sample_flag(sample)!r} data, but flag={flag!r} was given"
                )
            if size is not None and size != SAMPLES[sample]["size"]:
                raise ValueError(
                    f"sample {sample!r} ships at {SAMPLES[sample]['size']} px only; give another size's file by path="
                )
            path = sample_path(sample)
        info = flag_info(flag)
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if path is not None and (root is not None or download):
            raise ValueError("give either path= (a local MedMNIST-format file) or root=/download=, not both")
        if path is not None:
            source = Path(path)
        else:
            source = _resolve_official(flag, 28 if size is None else size, root, download)
        if size is not None:
            _check_size(flag, size)
        images, labels = load_medmnist_npz(source, split, flag)
        patients = split_patients(source, split, len(images))
        if size is not None and images.shape[1] != size:
            raise MedMNISTFileError(
                f"{source}: images are {images.shape[1]}x{images.shape[2]} but size={size} was asked"
            )
        if indices is not None:
            indices = np.asarray(indices, dtype=np.int64)
            if indices.ndim != 1 or (indices.size and (indices.min() < 0 or indices.max() >= len(images))):
                raise ValueError(
                    f"indices must be a 1D array of rows in [0, {len(images)}) of the {split} split of {source}"
                )
            images, labels = images[indices], labels[indices]
            patients = None if patients is None else patients[indices]
        self.flag, self.split, self.task, self.source = flag, split, info["task"], source
        self.size, self.num_channels = int(images.shape[1]), int(info["n_channels"])
        self.label_names: list[str] = [info["label"][str(i)] for i in range(len(info["label"]))]
        self.images, self.labels, self.indices = images, labels, indices
        self.patients: np.ndarray | None = patients
        self.targets = label_vectors(labels, self.task, len(self.label_names))
        self.num_labels = int(self.targets.shape[1])
        super().__init__(data=_Items(images, self.targets), transform=transform)

    def __repr__(self) -> str:
        return (
            f"MedMNISTDataset(flag={self.flag!r}, split={self.split!r}, n={len(self)}, size={self.size}, "
            f"labels={self.num_labels}, source={str(self.source)!r})"
        )


def output_names(dataset: MedMNISTDataset) -> list[str]:
    """Names of a classifier's outputs: the findings, or for a binary flag its positive class."""
    names = dataset.label_names
    return names if dataset.num_labels == len(names) else names[-dataset.num_labels :]
