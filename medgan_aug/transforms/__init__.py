"""MONAI-style transforms: mixing generated items into real batches, DiffAugment, classical augmentation
(per item and per batch), MixUp and CutMix on classification batches."""

from __future__ import annotations

from medgan_aug.transforms.adaptive import AdaptiveAugment
from medgan_aug.transforms.classical import (
    BatchClassicalAugmentation,
    BatchClassicalAugmentationd,
    classical_augmentation,
)
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
from medgan_aug.transforms.regularization import CutMixBatchd, MixUpBatchd, cutmix_kept_share
