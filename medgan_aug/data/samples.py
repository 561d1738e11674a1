"""Small real data sets shipped inside the package, the way scikit-learn and scikit-image ship theirs.

One sample today: ``nih1000``, 1,000 real NIH ChestX-ray14 radiographs in ChestMNIST format at 28 px (train
691 / val 76 / test 233, split by patient; attribution and description in ``sample_files/README.md``).
It lets a fresh clone or wheel run the examples, the quick study and the tests with no download.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from medgan_aug.utils.errors import MedMNISTFileError
from medgan_aug.utils.files import file_md5

__all__ = ["SAMPLES", "sample_path", "sample_flag"]

#: name -> file in ``medgan_aug/data/sample_files``, its MedMNIST flag, image size and MD5.
SAMPLES: dict[str, dict[str, Any]] = {
    "nih1000": {
        "file": "nih1000_chestmnist.npz",
        "flag": "chestmnist",
        "size": 28,
        "md5": "e7ea54fd0749ec33ebe08bfc2136a7ad",
        "description": "1,000 real NIH ChestX-ray14 radiographs, ChestMNIST format, 28 px (691/76/233)",
    }
}


def _entry(name: str) -> dict[str, Any]:
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; the package ships: {', '.join(sorted(SAMPLES))}")
    return SAMPLES[name]


def sample_flag(name: str) -> str:
    """The MedMNIST flag whose layout the sample ``name`` has."""
    return str(_entry(name)["flag"])


def sample_path(name: str) -> Path:
    """The installed file of sample ``name``, checked against its MD5.

    Raises:
        ValueError: no such sample.
        MedMNISTFileError: the file is missing from the installation or altered (MD5 differs).
    """
    entry = _entry(name)
    path = Path(str(resources.files("medgan_aug.data").joinpath("sample_files", entry["file"])))
    if not path.is_file():
        raise MedMNISTFileError(
            f"sample {name!r}: {path} is missing from this installation; reinstall medgan_aug (the file "
            f"ships as package data)"
        )
    actual = file_md5(path)
    if actual != entry["md5"]:
        raise MedMNISTFileError(f"sample {name!r}: {path} has MD5 {actual}, expected {entry['md5']}")
    return path
