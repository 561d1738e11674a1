"""The package's public names resolve, and ``import medgan_aug`` does not import torch-heavy stages."""

from __future__ import annotations

import subprocess
import sys

import pytest

import medgan_aug


def test_every_public_name_resolves():
    missing = [name for name in medgan_aug.__all__ if not hasattr(medgan_aug, name)]
    assert missing == []
    assert medgan_aug.SyntheticDataset.__module__ == "medgan_aug.data.synthetic"
    with pytest.raises(AttributeError, match="no attribute 'SynthDataset'"):
        medgan_aug.SynthDataset  # noqa: B018


def test_import_is_lazy():
    code = "import sys, medgan_aug; print('medgan_aug.apps.train' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
