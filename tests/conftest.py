"""Shared fixtures: the real chest X-ray files in ../shared/data (or $MEDGAN_AUG_DATA).

A missing file fails the test loudly: CI always has ../shared/data, and a silent skip would hide it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Two torch threads per process on a 2-core machine shared with other processes thrash (measured ~1 s
# per small-CNN step against 45 ms with one thread); tests are small, so one thread is the fast choice.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("MEDGAN_AUG_DATA", REPO.parent / "shared" / "data"))


def _shared_file(name: str) -> Path:
    path = DATA_DIR / name
    if not path.is_file():
        pytest.fail(
            f"real data file {path} is missing: tests need ../shared/data beside the repository "
            f"(or MEDGAN_AUG_DATA pointing at a folder with {name})"
        )
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def chest28_path() -> Path:
    return _shared_file("nih1000_chestmnist.npz")


@pytest.fixture(scope="session")
def chest64_path() -> Path:
    return _shared_file("nih1000_chestmnist_64.npz")


@pytest.fixture(scope="session")
def pneumonia_path() -> Path:
    return _shared_file("pneumoniamnist_union.npz")
