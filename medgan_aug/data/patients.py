"""Which patient each image comes from, where that is known: the unit of the patient-aware instrument.

Chest X-ray sets hold several images per patient (NIH1000: 691 training images from 185 patients, up to 61
each; 233 test images from 53 patients, one with 66), and images of one patient resemble each other more than
images of two. Distances, floors and bootstrap intervals that treat images as independent therefore measure
the patients as much as the images (GUIDE.md, "Measuring honestly"). This module gives one patient id per row
of a split, or None where the file does not say:

* a user's MedMNIST-format ``.npz`` may carry an optional ``{split}_patients`` array, one non-empty id
  (string or integer) per row of ``{split}_images``;
* the NIH1000 files (the packaged 28 px ``nih1000`` sample and the same 1,000 images at 64 px) are recognised
  by size and MD5, and their ids come from the NIH image file names in ``sample_files/nih1000_image_ids.json``
  (``00000231_013.png`` is follow-up 13 of patient ``00000231``; Wang et al., CVPR 2017);
* anything else (the official MedMNIST files carry no patient ids): None.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from medgan_aug.utils.errors import MedMNISTFileError
from medgan_aug.utils.files import file_md5

__all__ = ["NIH1000_FILES", "nih_patient_id", "nih1000_patient_ids", "split_patients"]

#: (size in bytes, MD5) of the files that hold the NIH1000 images in the order of ``nih1000_image_ids.json``:
#: the 28 px sample shipped in the package, and the 64 px file of the same rows.
NIH1000_FILES: dict[tuple[int, str], str] = {
    (746051, "e7ea54fd0749ec33ebe08bfc2136a7ad"): "nih1000_chestmnist.npz (28 px)",
    (3562827, "f5caaa1969a0b24aad14058645d70dd2"): "nih1000_chestmnist_64.npz (64 px)",
}

_NIH_NAME = re.compile(r"^(\d{8})_\d{3}\.png$")


def nih_patient_id(file_name: str) -> str:
    """The patient id of an NIH ChestX-ray14 image file name: ``"00000231_013.png"`` -> ``"00000231"``.

    Raises:
        ValueError: the name is not ``<8-digit patient>_<3-digit follow-up>.png``.
    """
    match = _NIH_NAME.match(file_name)
    if match is None:
        raise ValueError(f"{file_name!r} is not an NIH ChestX-ray14 image name (PPPPPPPP_FFF.png)")
    return match.group(1)


@cache
def _nih1000_ids() -> dict[str, tuple[str, ...]]:
    path = resources.files("medgan_aug.data").joinpath("sample_files", "nih1000_image_ids.json")
    names = json.loads(path.read_text(encoding="utf-8"))
    return {split: tuple(nih_patient_id(name) for name in rows) for split, rows in names.items()}


def nih1000_patient_ids(split: str) -> np.ndarray:
    """Patient ids of the NIH1000 rows of ``split`` (691 / 76 / 233), in the files' row order."""
    ids = _nih1000_ids()
    if split not in ids:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(ids)}")
    return np.array(ids[split], dtype=str)


def _checked_ids(path: Path, key: str, ids: np.ndarray, rows: int) -> np.ndarray:
    if ids.ndim != 1 or ids.shape[0] != rows:
        raise MedMNISTFileError(f"{path}: {key} has shape {ids.shape}, expected ({rows},): one id per image")
    if not (ids.dtype.kind in "iu" or ids.dtype.kind == "U"):
        raise MedMNISTFileError(
            f"{path}: {key} has dtype {ids.dtype}, expected integer or string patient ids"
        )
    text = ids.astype(str)
    if ids.dtype.kind == "U" and rows and (np.char.strip(text) == "").any():
        first = int(np.flatnonzero(np.char.strip(text) == "")[0])
        raise MedMNISTFileError(f"{path}: {key} has an empty patient id at row {first}")
    return text


def split_patients(path: str | os.PathLike, split: str, rows: int) -> np.ndarray | None:
    """One patient id (as a string) per row of ``split`` in the MedMNIST-format file ``path``, or None.

    Args:
        path: the ``.npz`` file (already validated for its images and labels).
        split: ``"train"``, ``"val"`` or ``"test"``.
        rows: the number of images of the split, which the ids must match.

    Returns:
        (rows,) string array: the file's ``{split}_patients``, else the NIH1000 ids when the file is one of
        :data:`NIH1000_FILES`, else None (patients unknown).

    Raises:
        MedMNISTFileError: ``{split}_patients`` is present but not one non-empty id per image.
    """
    path = Path(path)
    key = f"{split}_patients"
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = npz[key] if key in npz.files else None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise MedMNISTFileError(f"{path}: {key} cannot be read: {err}") from err
    if stored is not None:
        return _checked_ids(path, key, stored, rows)
    size = path.stat().st_size
    if any(size == known_size for known_size, _ in NIH1000_FILES) and (size, file_md5(path)) in NIH1000_FILES:
        ids = nih1000_patient_ids(split)
        return ids if len(ids) == rows else None
    return None
