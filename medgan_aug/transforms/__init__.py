"""MONAI-style transforms: mixing generated items into real batches, DiffAugment, classical augmentation."""

from __future__ import annotations

from medgan_aug.transforms.adaptive import AdaptiveAugment
from medgan_aug.transforms.classical import classical_augmentation
from medgan_aug.transforms.diffaugment import POLICIES, DiffAugment
from medgan_aug.transforms.mix import (
    MODES,
    MixedDataset,
    MixSynthetic,
    MixSyntheticD,
    MixSyntheticd,
    mixed_dataset,
    num_synthetic,
)
