"""The files that make up an exported medgan_aug MONAI bundle."""

from __future__ import annotations

__all__ = ["BUNDLE_FILES", "LABEL_POOL_FILE"]


#: Files every exported bundle holds (conditional bundles add ``models/label_pool.npy``).
BUNDLE_FILES = (
    "configs/metadata.json",
    "configs/inference.json",
    "configs/logging.conf",
    "models/model.pt",
    "docs/README.md",
)


LABEL_POOL_FILE = "models/label_pool.npy"
