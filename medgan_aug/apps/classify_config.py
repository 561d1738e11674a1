"""The settings of one classifier run: :class:`ClassifierRunConfig`, one field per ``medgan-aug classify`` option.

Torch-free, so ``medgan-aug classify --help`` builds its options without importing the training code; the run
itself is :func:`medgan_aug.apps.classify.train_classifier_run` (which re-exports this class).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from medgan_aug.apps.data_settings import subset_data_setting
from medgan_aug.utils.choices import CLASSIFIER_NAMES
from medgan_aug.utils.settings import setting

__all__ = ["ClassifierRunConfig"]


@dataclass
class ClassifierRunConfig:
    """Settings of :func:`~medgan_aug.apps.classify.train_classifier_run`, one field per ``medgan-aug classify``
    option.

    Each field's ``help`` metadata says what it does (also ``medgan-aug classify --help``); the data fields are
    :class:`~medgan_aug.data.MedMNISTDataset`'s and :func:`~medgan_aug.data.low_data_indices`' arguments.
    ``gan_run`` is the ``--run`` option (``--gan-run``, its former name, still parses).
    """

    out: str = setting(help="run folder to create (must not hold a run already)", group="run")
    path: str | None = subset_data_setting("path")
    sample: str | None = subset_data_setting("sample")
    flag: str = subset_data_setting("flag", "chestmnist")
    root: str | None = subset_data_setting("root")
    download: bool = subset_data_setting("download", False)
    size: int | None = subset_data_setting("size", None, note=" (None: the file's)")
    fraction: float = subset_data_setting("fraction", 1.0)
    subset_seed: int = subset_data_setting("subset_seed", 0)
    condition: str = setting(
        "real",
        "real, real+classical, real+synthetic@R, real+shuffled@R, real+pseudo@R, real+mixup, real+cutmix "
        "(each optionally +classical), synthetic-only, or synthetic-pretrain[@N]+real[+classical] (N steps on "
        "generated images, default --iterations, then exactly real)",
        group="condition",
    )
    gan_run: str | None = setting(
        None,
        "run folder (or generator.pt) of `medgan-aug train` (synthetic conditions)",
        group="condition",
        option="--run",
        aliases=("--gan-run",),
    )
    num_synthetic: int = setting(5000, "generated images in the pool batches draw from", group="condition")
    synthetic_labels: str = setting(
        "conditional",
        "labels of the generated images: the generator's conditioning labels, or the teacher's soft scores "
        "(needed for an unconditional generator)",
        group="condition",
        choices=("conditional", "teacher"),
    )
    teacher: str | None = setting(
        None,
        "a finished `medgan-aug classify --condition real` run folder on the same subset whose classifier is "
        "the teacher (real+pseudo@R, --synthetic-labels teacher); None: train the teacher here, as `real` "
        "with these options",
        group="condition",
    )
    classifier: str = setting("small_cnn", "classifier network", group="classifier", choices=CLASSIFIER_NAMES)
    iterations: int = setting(500, "optimiser steps", group="classifier")
    batch_size: int = setting(64, "the global batch", group="classifier")
    lr: float = setting(1e-3, "learning rate", group="classifier")
    seed: int = setting(0, "seed of the classifier, its batches and the synthetic pool", group="classifier")
    device: str = setting(
        "cpu", "cpu, cuda[:N] or auto (under torchrun on GPUs: cuda:LOCAL_RANK)", group="run"
    )
    threads: int | None = setting(
        None, "torch CPU threads (None: half this machine's CPUs, at least 1)", group="run"
    )
    score_split: str = setting(
        "test",
        "the split scored once after training: test (the number to report) or val (for choices made before a "
        "study, which must not look at test)",
        group="run",
        choices=("test", "val"),
    )
    progress: bool = setting(True, "show a progress bar (rank 0)", group="run")
    tensorboard: str | None = setting(
        None, "folder for TensorBoard event files: loss and learning rate per step (None: none)", group="run"
    )

    def __post_init__(self) -> None:
        """Paths given as ``os.PathLike`` (``pathlib.Path``) are kept as strings, so the run's config.json
        can record them."""
        for name in ("out", "path", "root", "gan_run", "teacher", "tensorboard"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                setattr(self, name, os.fspath(value))
