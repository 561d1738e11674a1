"""The study's teachers: one per (fraction, seed, classifier, classifier seed) cell, kept in ``teachers/<key>.pt``.

A cell's teacher is its ``real`` arm's classifier (:mod:`medgan_aug.apps.teacher`): in a study with
``real+pseudo@R`` (pseudo-labelling, Lee 2013) or ``synthetic: {labels: teacher}``, the first run of the cell
that needs it trains it under the lock ``teacher-<key>`` and writes it atomically; every other condition of
the cell, the ``real`` arm included, loads the same file, so all of them use one teacher, trained once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from medgan_aug.apps.study.conditions import Condition
from medgan_aug.apps.study.config import (
    RunSpec,
    StudyConfig,
    classifier_run_seed,
    data_identity,
    gan_run_config,
    parse_condition,
    study_lock,
)
from medgan_aug.apps.teacher import ensure_teacher
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.utils.locks import work_lock

__all__ = [
    "check_synthetic_labels",
    "uses_teacher",
    "uses_cell_teacher",
    "teacher_identity",
    "teacher_key",
    "cell_teacher",
]


def check_synthetic_labels(config: StudyConfig) -> None:
    """Refuse conditional labels (``synthetic.labels: conditional``, the default) for the generated images of
    an unconditional generator, which has none; the runner checks it before any GAN is trained."""
    if config.synthetic_budget.labels != "conditional":
        return
    if not any(parse_condition(c).needs_gan for c in config.conditions):
        return
    if not gan_run_config(config, config.fractions[0], config.seeds[0], size=28, out="gans").conditional:
        raise ValueError(
            "synthetic.labels: 'conditional' needs a conditional generator, and gan.conditional is false: "
            "set gan.conditional: true, or synthetic.labels: teacher to label generated images with the teacher"
        )


def uses_teacher(config: StudyConfig) -> bool:
    """Whether a condition of the study needs the cells' teachers (``real+pseudo@R``, or generated images with
    ``synthetic.labels: teacher``); then the ``real`` arm keeps its classifier as the cell's teacher file."""
    teacher_labels = config.synthetic_budget.labels == "teacher"
    conditions = [parse_condition(c) for c in config.conditions]
    return any(c.needs_pool or (teacher_labels and c.needs_gan) for c in conditions)


def uses_cell_teacher(config: StudyConfig, condition: Condition) -> bool:
    """Whether a run takes its cell's teacher: it labels images with it, or it is the teacher (``real``, in a
    study where another condition needs one)."""
    if condition.needs_pool or (condition.needs_gan and config.synthetic_budget.labels == "teacher"):
        return True
    plain_real = not (condition.needs_gan or condition.classical or condition.mixer)
    return plain_real and uses_teacher(config)


def teacher_identity(config: StudyConfig, run: RunSpec) -> dict[str, Any]:
    """What the teacher of ``run``'s cell is trained for: data, subset (fraction, seed), classifier, its seed
    and the classifier budget (recorded in its file, hashed into its key)."""
    return {
        "data": data_identity(config),
        "fraction": run.fraction,
        "seed": run.seed,
        "classifier": run.classifier,
        "classifier_run_seed": classifier_run_seed(run.seed, run.classifier_seed),
        "budget": dataclasses.asdict(config.classifier_budget),
    }


def teacher_key(config: StudyConfig, run: RunSpec) -> str:
    """Key of the teacher of ``run``'s cell (``teachers/<key>.pt``, lock ``teacher-<key>``)."""
    payload = json.dumps(teacher_identity(config, run), sort_keys=True, default=str)
    return hashlib.sha1(payload.encode()).hexdigest()[:12]


def cell_teacher(
    config: StudyConfig,
    run: RunSpec,
    out: Path,
    *,
    data: dict[str, Any],
    indices: Any,
    device: str | torch.device,
    wait: bool,
    progress: bool = False,
) -> tuple[Any, dict, Path] | None:
    """The teacher of ``run``'s cell as (model, file meta, file), trained once under its lock
    (:func:`~medgan_aug.apps.teacher.ensure_teacher`); None while another process holds it (``wait=False``).

    Args:
        config: the study.
        run: any run of the cell.
        out: the study folder.
        data: :class:`~medgan_aug.data.MedMNISTDataset` keyword arguments of the study's data.
        indices: the cell's labelled subset.
        device: where the teacher trains.
        wait: wait for a teacher another process is training.
        progress: show the training's progress bar.
    """
    key = teacher_key(config, run)
    path = out / "teachers" / f"{key}.pt"
    with work_lock(study_lock(out, f"teacher-{key}"), wait=wait) as held:
        if not held:
            return None
        budget = config.classifier_budget
        model, meta = ensure_teacher(
            path,
            MedMNISTDataset(split="train", indices=indices, **data),
            run.classifier,
            identity=teacher_identity(config, run),
            iterations=int(budget.iterations),
            batch_size=int(budget.batch_size),
            lr=float(budget.lr),
            seed=classifier_run_seed(run.seed, run.classifier_seed),
            device=device,
            progress=progress,
        )
    return model, meta, path
