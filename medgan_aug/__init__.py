"""medgan_aug: DCGAN data augmentation for MONAI, and the measurement of whether it helps.

Public names are imported lazily (PEP 562), so ``import medgan_aug`` stays cheap and each stage's
module can be used on its own.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "medgan_aug.data": ["MedMNISTDataset", "MedMNISTFileError", "load_medmnist_npz", "low_data_indices"],
    "medgan_aug.networks": [
        "DCGANGenerator",
        "DCGANDiscriminator",
        "GeneratorFileError",
        "load_generator",
        "save_generator",
        "to_unit_range",
    ],
    "medgan_aug.diffaugment": ["DiffAugment"],
    "medgan_aug.training": ["GANConfig", "GANDivergenceError", "GANTrainer", "train_gan"],
    "medgan_aug.checkpoint": ["CheckpointError", "CorruptFileError", "UnsafeFileError"],
    "medgan_aug.synthetic": ["BalancedLabelSampler", "JointLabelSampler", "SyntheticDataset"],
    "medgan_aug.transforms": ["MixSynthetic", "MixSyntheticd", "MixedDataset", "mixed_dataset"],
    "medgan_aug.classify": [
        "CLASSIFIER_NAMES",
        "ResNet18Classifier",
        "SmallCNN",
        "build_classifier",
        "classical_augmentation",
        "extract_features",
        "load_classifier",
        "loss_for_task",
        "predict",
        "save_classifier",
        "train_classifier",
    ],
    "medgan_aug.classifier_run": ["ClassifierRunConfig", "train_classifier_run"],
    "medgan_aug.distributed": ["distributed_context", "single_process"],
    "medgan_aug.metrics": ["evaluate_scores", "paired_bootstrap_delta", "pooled_paired_bootstrap_delta"],
    "medgan_aug.evaluation": [
        "conditional_fidelity",
        "density_coverage",
        "distribution_metrics",
        "extractor_features",
        "fit_feature_extractor",
        "frechet_distance",
        "kernel_distance",
        "load_or_fit_extractor",
        "precision_recall",
    ],
    "medgan_aug.memorization": ["MemorizationAudit", "memorization_audit"],
    "medgan_aug.report": ["write_report"],
    "medgan_aug.study": ["StudyConfig", "load_study_config", "run_study"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'medgan_aug' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
