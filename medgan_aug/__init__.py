"""medgan_aug: generated chest X-rays (DCGAN or diffusion) as data augmentation for MONAI, and the
measurement of whether it helps.

Public names are imported lazily (PEP 562), so ``import medgan_aug`` stays cheap and each stage's
module can be used on its own.
"""

from __future__ import annotations

from medgan_aug.utils.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "medgan_aug.data.medmnist": ["MedMNISTDataset", "load_medmnist_npz"],
    "medgan_aug.utils.errors": [
        "CheckpointError",
        "CorruptFileError",
        "GANDivergenceError",
        "GeneratorFileError",
        "InsufficientDiskSpaceError",
        "MedMNISTFileError",
        "ModelFileError",
        "ResumeError",
        "OutputNotOursError",
        "TrainingDivergenceError",
        "UnsafeFileError",
    ],
    "medgan_aug.data.stratify": ["low_data_indices"],
    "medgan_aug.networks.dcgan": ["DCGANDiscriminator", "DCGANGenerator", "to_unit_range"],
    "medgan_aug.networks.diffusion": ["DiffusionGenerator"],
    "medgan_aug.networks.model_file": [
        "load_any_generator",
        "load_classifier",
        "load_diffusion_generator",
        "load_generator",
        "load_model",
        "save_classifier",
        "save_generator",
        "save_model",
    ],
    "medgan_aug.transforms.diffaugment": ["DiffAugment"],
    "medgan_aug.apps.train": ["GANConfig", "train_gan"],
    "medgan_aug.engines.gan_trainer": ["GANTrainer"],
    "medgan_aug.engines.gan_losses": ["GANObjective"],
    "medgan_aug.data.label_samplers": ["BalancedLabelSampler", "JointLabelSampler"],
    "medgan_aug.data.synthetic": ["SyntheticDataset"],
    "medgan_aug.apps.generate": ["generate_medmnist", "write_medmnist_npz"],
    "medgan_aug.transforms.mix": ["MixSynthetic", "MixSyntheticd", "MixedDataset", "mixed_dataset"],
    "medgan_aug.networks.classifiers": [
        "CLASSIFIER_NAMES",
        "ResNet18Classifier",
        "SmallCNN",
        "build_classifier",
        "loss_for_task",
    ],
    "medgan_aug.transforms.classical": [
        "BatchClassicalAugmentation",
        "BatchClassicalAugmentationd",
        "classical_augmentation",
    ],
    "medgan_aug.transforms.regularization": ["CutMixBatchd", "MixUpBatchd"],
    "medgan_aug.engines.classifier_trainer": ["extract_features", "predict", "train_classifier"],
    "medgan_aug.apps.classify": ["ClassifierRunConfig", "train_classifier_run"],
    "medgan_aug.engines.distributed": ["distributed_context", "single_process"],
    "medgan_aug.metrics.classification": ["evaluate_scores"],
    "medgan_aug.metrics.bootstrap": ["paired_bootstrap_delta", "pooled_paired_bootstrap_delta"],
    "medgan_aug.metrics.extractor": ["conditional_fidelity", "extractor_features"],
    "medgan_aug.apps.extractor_fit": ["fit_feature_extractor", "load_or_fit_extractor"],
    "medgan_aug.metrics.generative": [
        "density_coverage",
        "distribution_metrics",
        "frechet_distance",
        "kernel_distance",
        "precision_recall",
    ],
    "medgan_aug.metrics.faithfulness": ["label_faithfulness"],
    "medgan_aug.metrics.memorization": ["MemorizationAudit", "memorization_audit"],
    "medgan_aug.handlers.model_selection": ["ValidationSelection"],
    "medgan_aug.apps.report.report": ["write_report"],
    "medgan_aug.apps.study.config": ["StudyConfig", "load_study_config"],
    "medgan_aug.apps.study.study": ["run_study"],
}
__getattr__, _NAMES = lazy_exports(__name__, _EXPORTS, submodules=False)
__all__ = _NAMES + ["__version__"]


def __dir__() -> list[str]:
    return __all__
