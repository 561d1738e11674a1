"""The data settings ``GANConfig`` and ``ClassifierRunConfig`` share: a MedMNIST file and its low-data subset.

Written once here, so both configs (and ``medgan-aug train`` / ``classify``) describe them the same way.
"""

from __future__ import annotations

from typing import Any

from medgan_aug.utils.settings import setting

__all__ = ["SUBSET_DATA_HELP", "subset_data_setting"]

SUBSET_DATA_HELP = {
    "path": "a MedMNIST-format .npz file (e.g. ../shared/data/nih1000_chestmnist.npz); None: the official "
    "file of flag under root",
    "sample": "a real sample shipped in the package, instead of a file (nih1000)",
    "flag": "MedMNIST flag (label layout of path, or the official file)",
    "root": "medmnist data folder for the official file (None: ~/.medmnist)",
    "download": "download the official file if missing",
    "size": "image size",
    "fraction": "share of the train split used (a stratified subset), in (0, 1]",
    "subset_seed": "seed of the low-data subset",
}


def subset_data_setting(name: str, default: Any = None, note: str = "") -> Any:
    """The field of shared data setting ``name`` (a key of :data:`SUBSET_DATA_HELP`), in the ``data`` group.

    Args:
        name: the setting.
        default: its default in this config.
        note: appended to the shared help text (e.g. what None means in this config).
    """
    choices = (28, 64) if name == "size" else None
    return setting(default, SUBSET_DATA_HELP[name] + note, group="data", choices=choices)
