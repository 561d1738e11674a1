"""One study run's inputs (:class:`RunData`: what its classifier trains and is scored on) and its record
(:func:`run_record`: ``runs/<key>.json``, the row the summary reads), for :mod:`medgan_aug.apps.study.runner`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from medgan_aug.apps.study.conditions import Condition
from medgan_aug.apps.study.config import RunSpec, StudyConfig
from medgan_aug.data.medmnist import MedMNISTDataset, output_names
from medgan_aug.data.pools import POOL_LABELLED, pool_label

__all__ = ["RunData", "run_record"]


@dataclasses.dataclass
class RunData:
    """What one run trains and scores on: its real subset and test split, its condition's batch transform
    with the generated images (``synthetic``, of the GAN in ``gan_dir``) and teacher-labelled pool
    (``pseudo``) it draws from, its device and classifier seed."""

    source: dict[str, Any]
    indices: Any
    test: Any
    train: MedMNISTDataset
    condition: Condition
    device: str
    classifier_seed: int
    gan_dir: Path | None
    gan_seconds: float | None
    synthetic: Any
    labels: str | None
    pseudo: Any
    batch_transform: Any


def run_record(
    config: StudyConfig,
    run: RunSpec,
    out: Path,
    key: str,
    data: RunData,
    metrics: dict[str, Any],
    seconds: float,
    pretraining: dict[str, Any] | None,
    teacher: tuple[Any, dict, Path] | None,
) -> dict[str, Any]:
    """The run's record (``runs/<key>.json``): what it trained on, its test AUC/ACC and what it cost."""
    source, train, condition, budget = data.source, data.train, data.condition, config.classifier_budget
    uses_gan = condition.needs_gan
    return {
        "key": key,
        "study": config.name,
        **dataclasses.asdict(run),
        "data_file": Path(source["path"]).name if source.get("path") else f"{source['flag']} (official)",
        "flag": train.flag,
        "task": train.task,
        "image_size": train.size,
        "n_train": len(data.indices),
        "n_test": len(data.test),
        "classifier_run_seed": data.classifier_seed,
        "synthetic_ratio": condition.synthetic_ratio,
        "classical": condition.classical,
        "shuffled_labels": condition.shuffled_labels,
        "mixer": condition.mixer,
        "auc": metrics["auc"],
        "acc": metrics["acc"],
        "per_label_auc": metrics["auc_per_label"],
        "skipped_labels": metrics["skipped_labels"],
        "label_names": output_names(data.test),
        "classifier_iterations": int(budget.iterations),
        "classifier_batch_size": int(budget.batch_size),
        "classifier_seconds": seconds,  # both phases of synthetic-pretrain[@N]+real
        "synthetic_pretrain_iterations": pretraining["iterations"] if pretraining else 0,
        "synthetic_pretrain_seconds": pretraining["seconds"] if pretraining else None,
        "device": data.device,
        "gan_dir": str(data.gan_dir.relative_to(out)) if uses_gan else None,
        "pool": pool_label(config.gan.get("pool", POOL_LABELLED)) if uses_gan else None,
        "gan_seconds": data.gan_seconds if uses_gan else None,
        "gan_iterations": config.gan.get("iterations") if uses_gan else None,
        "num_synthetic": len(data.synthetic) if uses_gan else 0,
        "synthetic_labels": data.labels,
        "pseudo_ratio": condition.pseudo_ratio,
        "num_pseudo": len(data.pseudo) if data.pseudo is not None else 0,
        "teacher": str(teacher[2].relative_to(out)) if teacher is not None else None,
        "teacher_fingerprint": teacher[1]["fingerprint"] if teacher is not None else None,
    }
