"""The files that make up an exported medgan_aug MONAI bundle, and how a bundle (or a PNG folder written by
:func:`medgan_aug.bundle.write_synthetic`) is recognised before ``overwrite`` replaces it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from medgan_aug.utils.outputs import files_under, unknown_files

__all__ = [
    "BUNDLE_FILES",
    "LABEL_POOL_FILE",
    "METADATA_SCHEMA",
    "OUTPUTS_FOLDER",
    "bundle_problem",
    "png_folder_problem",
]


#: Files every exported bundle holds (conditional bundles add ``models/label_pool.npy``).
BUNDLE_FILES = (
    "configs/metadata.json",
    "configs/inference.json",
    "configs/logging.conf",
    "models/model.pt",
    "docs/README.md",
)


LABEL_POOL_FILE = "models/label_pool.npy"


#: The ``schema`` of an exported bundle's ``configs/metadata.json``: how a bundle of ours is recognised.
METADATA_SCHEMA = "medgan_aug bundle metadata, following the MONAI bundle specification (metadata.json)"


#: Where the bundle's inference writes by default (``outputs/synthetic.npz``): part of the bundle.
OUTPUTS_FOLDER = "outputs"


_PNG_NAME = re.compile(r"\d{6,}\.png")


def bundle_problem(folder: Path) -> str | None:
    """None when ``folder`` is a bundle written by ``export-bundle``, else why it is not.

    A bundle of ours has a ``configs/metadata.json`` with our :data:`METADATA_SCHEMA` and a ``medgan_aug``
    section, and holds only the bundle's files and what its inference wrote under ``outputs/``.
    """
    metadata = folder / "configs" / "metadata.json"
    if not metadata.is_file():
        return "is not empty and has no configs/metadata.json (not a medgan_aug bundle)"
    try:
        record = json.loads(metadata.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "has a configs/metadata.json that is not readable JSON (not a medgan_aug bundle)"
    if not isinstance(record, dict) or record.get("schema") != METADATA_SCHEMA or "medgan_aug" not in record:
        return "has a configs/metadata.json that does not name medgan_aug (not a medgan_aug bundle)"
    ours = {*BUNDLE_FILES, LABEL_POOL_FILE}
    return unknown_files(
        files_under(folder), lambda name: name in ours or name.startswith(f"{OUTPUTS_FOLDER}/")
    )


def png_folder_problem(folder: Path) -> str | None:
    """None when ``folder`` holds only what ``write_synthetic`` writes (``000000.png`` ..., ``labels.csv``)."""
    return unknown_files(
        files_under(folder), lambda name: name == "labels.csv" or bool(_PNG_NAME.fullmatch(name))
    )
