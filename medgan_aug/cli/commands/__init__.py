"""Subcommands of ``medgan-aug``: each module defines ``register(subparsers)``."""

from __future__ import annotations

import argparse
from typing import Any


def add_subset_data_options(parser: argparse.ArgumentParser, defaults: Any) -> None:
    """The data options shared by ``train`` and ``classify``: the file and its low-data subset.

    ``defaults`` has ``flag``, ``size``, ``fraction`` and ``subset_seed`` (a ``GANConfig`` or a
    ``ClassifierRunConfig``).
    """
    data = parser.add_argument_group("data")
    data.add_argument(
        "--path", help="a MedMNIST-format .npz file (e.g. ../shared/data/nih1000_chestmnist.npz)"
    )
    data.add_argument("--sample", help="a real sample shipped in the package instead of --path (nih1000)")
    data.add_argument(
        "--flag", default=defaults.flag, help="MedMNIST flag (layout of --path, or the official file)"
    )
    data.add_argument("--root", help="medmnist data folder for the official file (default ~/.medmnist)")
    data.add_argument("--download", action="store_true", help="download the official file if missing")
    data.add_argument("--size", type=int, default=defaults.size, choices=(28, 64), help="image size")
    data.add_argument(
        "--fraction", type=float, default=defaults.fraction, help="share of the train split used, in (0, 1]"
    )
    data.add_argument(
        "--subset-seed", type=int, default=defaults.subset_seed, help="seed of the low-data subset"
    )
