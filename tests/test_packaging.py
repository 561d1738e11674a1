"""The built wheel carries the real sample, its attribution and the packaged study config."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contains_the_sample_its_attribution_and_the_quick_config(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w",
         str(tmp_path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("medgan_aug-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for wanted in (
        "medgan_aug/data/sample_files/nih1000_chestmnist.npz",
        "medgan_aug/data/sample_files/nih1000_image_ids.json",
        "medgan_aug/data/sample_files/README.md",
        "medgan_aug/apps/study/configs/quick.yaml",
        "medgan_aug/cli/commands/train.py",
    ):
        assert wanted in names, f"{wanted} is not in {wheel.name}"
    shipped = zipfile.ZipFile(wheel).read("medgan_aug/data/sample_files/nih1000_chestmnist.npz")
    assert shipped == (REPO / "medgan_aug/data/sample_files/nih1000_chestmnist.npz").read_bytes()
