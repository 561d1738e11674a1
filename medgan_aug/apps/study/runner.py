"""Executes the runs of a study grid, one (fraction, seed) group at a time (see :mod:`medgan_aug.apps.study`).

A group shares its training subset, its GAN (trained once, on that subset only, and cached under
``gans/<gan key>/``) and its synthetic source; each run then trains one classifier under one condition
and scores the test split once. In a study with ``real+pseudo@R`` or teacher labels for generated images, the
``real`` classifier of each (fraction, seed, classifier, classifier seed) cell is kept as the cell's teacher
(``teachers/<key>.pt``, :mod:`medgan_aug.apps.teacher`), trained once and used by every condition of the cell.
Results are files, so groups can run in separate processes; processes that share a folder (even on the same
groups) train each GAN, teacher and run once, under its lock (:func:`run_group`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import time
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from medgan_aug.apps.report.report import write_report
from medgan_aug.apps.study.conditions import condition_batch_transform
from medgan_aug.apps.study.config import (
    RunSpec,
    StudyConfig,
    classifier_run_seed,
    data_identity,
    gan_key,
    gan_run_config,
    parse_condition,
    run_key,
    study_lock,
)
from medgan_aug.apps.study.folder import write_scores
from medgan_aug.apps.study.pretraining import train_arm
from medgan_aug.apps.study.run_record import RunData, run_record
from medgan_aug.apps.study.sections import ClassifierBudget, EvaluationSettings, SyntheticBudget
from medgan_aug.apps.study.teachers import cell_teacher, check_synthetic_labels, uses_cell_teacher
from medgan_aug.apps.teacher import pseudo_labelled_pool, teacher_labelled_synthetic, teacher_labeller
from medgan_aug.apps.train import GANConfig, train_gan
from medgan_aug.apps.train_resume import recorded_training_seconds, settings_differences, trained_precision
from medgan_aug.data.medmnist import MedMNISTDataset, output_names
from medgan_aug.data.stratify import low_data_indices
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.engines.classifier_trainer import predict, train_classifier
from medgan_aug.engines.distributed import single_process
from medgan_aug.handlers.checkpoint import CheckpointManager
from medgan_aug.metrics.classification import evaluate_scores
from medgan_aug.metrics.extractor import EXTRACTOR_VERSION
from medgan_aug.networks.classifiers import build_classifier
from medgan_aug.utils.atomic import write_json_atomic
from medgan_aug.utils.devices import resolve_device, resolve_precision, safe_thread_count
from medgan_aug.utils.locks import work_lock

__all__ = [
    "CLASSIFIER_DEFAULTS",
    "SYNTHETIC_DEFAULTS",
    "EVALUATION_DEFAULTS",
    "data_source",
    "process_device",
    "ensure_gan",
    "run_group",
    "run_groups",
    "evaluate_gans",
]


logger = logging.getLogger("medgan_aug.apps.study")


#: The budgets a study config's sections leave out (:mod:`medgan_aug.apps.study.sections`).
CLASSIFIER_DEFAULTS = dataclasses.asdict(ClassifierBudget())


SYNTHETIC_DEFAULTS = dataclasses.asdict(SyntheticBudget())


EVALUATION_DEFAULTS = dataclasses.asdict(EvaluationSettings())


def data_source(config: StudyConfig) -> dict[str, Any]:
    """MedMNISTDataset keyword arguments for the study's data (a local path or the official file)."""
    data = config.data
    source = {"flag": data.get("flag", "chestmnist"), "size": data.get("size")}
    if data.get("path"):
        source["path"] = data["path"]
    else:
        source.update(root=data.get("root"), download=bool(data.get("download", False)))
    return source


def process_device(config: StudyConfig) -> str:
    """The device this process runs the study on: ``config.device`` resolved (ValueError naming it when CUDA
    is asked for but missing); under torchrun a bare ``cuda`` (or ``auto`` with GPUs) is ``cuda:LOCAL_RANK``,
    so the processes of one machine use one GPU each."""
    device = resolve_device(config.device)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())
    return str(device)


def ensure_gan(
    config: StudyConfig, fraction: float, seed: int, out: Path, size: int
) -> tuple[Path, float | None]:
    """Train, resume or reuse the GAN of a (fraction, seed) group, trained on that subset only.

    A run killed before its first checkpoint holds nothing to resume and is started again; a run with a
    checkpoint resumes from it. The wall time is the run's own record (``training_seconds``): every session,
    killed ones included up to their last checkpoint.

    Returns:
        The run directory and the GAN's total training wall time in seconds (None for a run trained before
        runs recorded it).
    """

    run_dir = out / "gans" / gan_key(config, fraction, seed)
    settings = gan_run_config(config, fraction, seed, size=size, out=run_dir, device=process_device(config))
    if (run_dir / "generator.pt").is_file():
        warn_if_trained_otherwise(run_dir, settings)
        return run_dir, recorded_training_seconds(run_dir)
    resumable = (run_dir / "config.json").is_file() and bool(
        CheckpointManager(run_dir / "checkpoints").list()
    )
    if run_dir.exists() and not resumable:
        shutil.rmtree(run_dir)  # killed before its first checkpoint: nothing to keep
    train_gan(dataclasses.replace(settings, resume=resumable))
    return run_dir, recorded_training_seconds(run_dir)


def warn_if_trained_otherwise(run_dir: Path, config: GANConfig) -> None:
    """Warn when a finished GAN the study reuses was trained with other settings than it would be now.

    A GAN's key hashes the study config's ``gan:`` block, not the defaults it leaves open, so a study folder
    continued after an upgrade that changed a default (precision ``auto`` -> bf16, a new loss term) reuses
    its finished GANs, trained the old way, beside new ones trained the new way. Nothing is retrained or
    lost; the warning names the settings and how to make the study uniform.
    """
    try:
        saved = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return  # a finished run without a readable record: nothing to compare (its own checks report it)
    details = settings_differences(saved, config.to_dict())
    was, now = trained_precision(saved), resolve_precision(config.precision, resolve_device(config.device))
    if was != now:
        details.append(f"precision: trained in {was!r} vs now {now!r}")
    if details:
        warnings.warn(
            f"study: reusing the finished GAN in {run_dir}, trained with other settings than this version "
            f"would use ({'; '.join(details)}); this study's GANs may not all be trained alike. To train them "
            "alike, pin these settings in the config's gan: block (new keys: its GANs are trained again) or "
            "start a new --out.",
            stacklevel=2,
        )


#: The file in a generator's folder that keeps its study images (:func:`_synthetic_source`).
SYNTHETIC_CACHE_FILE = "study_images.pt"


def _synthetic_source(run_dir: Path, config: StudyConfig, seed: int) -> Any:
    """The generated images the runs of a group mix in: ``num_samples`` items drawn with the group's seed
    (seed 0 from a ``shared_gan``, the same images for every group). A diffusion generator's or a shared
    one's are kept in its folder (:data:`SYNTHETIC_CACHE_FILE`) and read back by later groups and resumed
    studies: a DDPM samples a few images a second on a CPU core."""
    device = process_device(config)  # generated there, cached on the CPU (mixed into CPU batches)
    num = config.synthetic_budget.num_samples
    if config.shared_gan:
        seed = 0
    dataset = SyntheticDataset.from_run(run_dir, num, seed=seed, device=device)
    slow = config.shared_gan or config.gan.get("model", "dcgan") != "dcgan"
    return dataset.materialize(run_dir / SYNTHETIC_CACHE_FILE if slow else None)


def _unfinished(config: StudyConfig, runs: Sequence[RunSpec], out: Path) -> list[RunSpec]:
    return [run for run in runs if not (out / "runs" / f"{run_key(config, run)}.json").is_file()]


def run_group(
    config: StudyConfig, runs: Sequence[RunSpec], out: Path, progress: bool = False, *, wait: bool = False
) -> list[dict]:
    """Run the runs of one (fraction, seed) group; each leaves ``runs/<key>.json`` and ``scores/<key>.npz``.

    The group's GAN and every run are trained under their own lock (:func:`study_lock`), so processes that
    share ``out`` never train the same thing twice. Work whose lock another process holds is skipped
    (``wait=False``: its runs are left for later) or waited for (``wait=True``); once this process holds a
    run's lock, a run the other process finished is skipped and one it left (it died) is run here. Locks
    are never held two at a time, so two processes cannot wait for each other.

    Args:
        config: the study.
        runs: runs of one group (runs already finished are skipped).
        out: the study folder.
        progress: show the classifier's progress bar.
        wait: wait for work other processes hold instead of skipping it.

    Returns:
        The records of the runs this call trained.
    """
    runs = _unfinished(config, runs, out)
    if not runs:
        return []
    fraction, seed = runs[0].group
    source = data_source(config)
    train_all = MedMNISTDataset(split="train", **source)
    indices = low_data_indices(train_all.labels, fraction=fraction, seed=seed)
    test = MedMNISTDataset(split="test", **source)
    conditions = {run.condition: parse_condition(run.condition) for run in runs}
    gan = None  # the group's GAN: (folder, training seconds, synthetic source)
    if any(c.needs_gan for c in conditions.values()):
        check_synthetic_labels(config)  # before a GAN is trained for images that could have no labels
        key = gan_key(config, fraction, seed)
        with work_lock(study_lock(out, f"gan-{key}"), wait=wait) as held:
            # under the lock, a GAN folder without a generator is one a dead process left, not one being made
            if held and not (out / "gans" / key / "generator.pt").is_file():
                logger.info("training GAN %s: fraction=%g seed=%d", key, fraction, seed)
            trained = ensure_gan(config, fraction, seed, out, train_all.size) if held else None
            # drawn under the lock: a slow generator's images are drawn once, then read from its folder
            synthetic = None if trained is None else _synthetic_source(trained[0], config, seed)
        if trained is None:
            logger.info("GAN %s is being trained by another process: its runs come later", key)
            runs = [run for run in runs if not conditions[run.condition].needs_gan]
        else:
            gan = (*trained, synthetic)
    rows = []
    teachers: dict[tuple[str, int], Any] = {}  # the cell's teacher by (classifier, classifier seed)
    for run in runs:
        key = run_key(config, run)
        teacher = None
        if uses_cell_teacher(config, conditions[run.condition]):
            cell = (run.classifier, run.classifier_seed)
            teacher = teachers.get(cell) or cell_teacher(
                config, run, out, data=source, indices=indices, device=process_device(config), wait=wait,
                progress=progress,
            )  # fmt: skip
            if teacher is None:
                logger.info("the teacher of run %s is being trained by another process: skipped for now", key)
                continue
            teachers[cell] = teacher
        with work_lock(study_lock(out, f"run-{key}"), wait=wait) as held:
            if not held:
                logger.info("run %s is being trained by another process: skipped for now", key)
            elif not (out / "runs" / f"{key}.json").is_file():  # another process may have finished it
                group = (indices, test, gan)
                rows.append(_train_and_score(config, run, out, group, progress=progress, teacher=teacher))
    return rows


def _train_and_score(
    config: StudyConfig,
    run: RunSpec,
    out: Path,
    group: tuple[Any, Any, Any],
    progress: bool,
    teacher: tuple[Any, dict, Path] | None = None,
) -> dict[str, Any]:
    """Train one run's classifier, score the test split, write its scores and record; returns the record.

    Every condition trains on the same dataset (no per-item transform), so for one classifier seed every
    arm draws the same real batches; the condition is its batch transform
    (:func:`~medgan_aug.apps.study.conditions.condition_batch_transform`). The placebo's labels are
    permuted with the study seed, so ``shuffled@R`` and ``synthetic@R`` of a group share their images.
    ``teacher`` (model, file meta, file): the cell's teacher, which labels the pool of ``real+pseudo@R``
    and, with ``synthetic.labels: teacher``, the generated images; for ``real`` it is the run's classifier.
    ``synthetic-pretrain[@N]+real`` trains on the generated images first, then as ``real``
    (:func:`~medgan_aug.apps.study.pretraining.train_arm`); its record counts both phases' steps.
    """
    data = _run_data(config, run, group, teacher)
    model, seconds, pretraining = _train_run_classifier(config, run, data, teacher, progress)
    task, test = data.train.task, data.test
    scores, targets = predict(model, test, task=task, device=data.device)
    metrics = evaluate_scores(targets, scores, task=task, label_names=output_names(test))
    key = run_key(config, run)
    row = run_record(config, run, out, key, data, metrics, seconds, pretraining, teacher)
    write_scores(out, key, scores, targets, test.patients)  # patients: the summary's cluster bootstrap
    write_json_atomic(out / "runs" / f"{key}.json", row)
    fraction, seed = run.group
    logger.info(
        "finished %s: fraction=%g seed=%d classifier seed %d %s %s AUC %.4f ACC %.4f (%.0f s)",
        key,
        fraction,
        seed,
        run.classifier_seed,
        run.condition,
        run.classifier,
        metrics["auc"],
        metrics["acc"],
        seconds,
    )
    return row


def _run_data(
    config: StudyConfig, run: RunSpec, group: tuple[Any, Any, Any], teacher: tuple[Any, dict, Path] | None
) -> RunData:
    """Load one run's real subset, and label its pool and generated images with the cell's teacher where the
    condition asks for it (:mod:`medgan_aug.apps.teacher`)."""
    indices, test, gan = group
    seed = run.group[1]
    classifier_seed = classifier_run_seed(seed, run.classifier_seed)
    source = data_source(config)
    condition = parse_condition(run.condition)
    gan_dir, gan_seconds, synthetic = gan if condition.needs_gan else (None, None, None)
    train = MedMNISTDataset(split="train", indices=indices, **source)
    device = process_device(config)
    labels = config.synthetic_budget.labels if condition.needs_gan else None
    pseudo = None
    if teacher is not None:
        labeller = teacher_labeller(teacher[0], train.task, device)
        if condition.needs_pool:
            pseudo = pseudo_labelled_pool(source, indices, labeller)
        if labels == "teacher":
            synthetic = teacher_labelled_synthetic(synthetic, labeller)
    batch_transform = condition_batch_transform(condition, synthetic, shuffle_labels_seed=seed, pseudo=pseudo)
    return RunData(
        source, indices, test, train, condition, device, classifier_seed, gan_dir, gan_seconds, synthetic,
        labels, pseudo, batch_transform,
    )  # fmt: skip


def _train_run_classifier(
    config: StudyConfig,
    run: RunSpec,
    data: RunData,
    teacher: tuple[Any, dict, Path] | None,
    progress: bool,
) -> tuple[Any, float, dict[str, Any] | None]:
    """The run's trained classifier, its training seconds (both phases of ``synthetic-pretrain[@N]+real``)
    and the synthetic phase's record (None for other conditions); ``real`` with a cell teacher is the
    teacher itself, trained once for the cell."""
    condition, train = data.condition, data.train
    if data.batch_transform is None and teacher is not None and not condition.synthetic_pretrain:
        return teacher[0], float(teacher[1]["training_seconds"]), None  # real: the cell's teacher
    budget = config.classifier_budget
    model = build_classifier(
        run.classifier, train.num_channels, train.num_labels, train.size, seed=data.classifier_seed
    )
    started = time.perf_counter()
    pretraining = train_arm(
        model, train, condition, synthetic=data.synthetic, task=train.task, iterations=int(budget.iterations),
        batch_size=int(budget.batch_size), lr=float(budget.lr), seed=data.classifier_seed,
        batch_transform=data.batch_transform, progress=progress, device=data.device, trainer=train_classifier,
    )["synthetic_pretraining"]  # fmt: skip
    return model, time.perf_counter() - started, pretraining


def _group_worker(args: tuple[StudyConfig, list[RunSpec], Path, int, bool]) -> int:
    config, runs, out, threads, wait = args
    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("medgan_aug").setLevel(logging.INFO)
    with single_process():  # a worker inherits torchrun's environment but must train alone
        run_group(config, runs, out, wait=wait)
    return len(runs) - len(_unfinished(config, runs, out))


def run_groups(
    config: StudyConfig,
    runs: Sequence[RunSpec],
    out: Path,
    *,
    jobs: int = 1,
    progress: bool = True,
    wait: bool = False,
) -> None:
    """Run ``runs`` grouped by (fraction, seed), in this process or in ``jobs`` worker processes.

    ``wait``: wait for runs other processes hold rather than skip them (:func:`run_group`).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    groups: dict[tuple[float, int], list[RunSpec]] = defaultdict(list)
    for run in runs:
        groups[run.group].append(run)
    if not groups:
        return
    bar = tqdm(total=len(runs), desc=f"study {config.name}", unit="run", disable=not progress)
    if jobs == 1:
        for group_runs in groups.values():
            run_group(config, group_runs, out, wait=wait)
            bar.update(len(group_runs) - len(_unfinished(config, group_runs, out)))
    else:
        threads = safe_thread_count(jobs)
        tasks = [(config, group_runs, out, threads, wait) for group_runs in groups.values()]
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            for finished in pool.imap_unordered(_group_worker, tasks):
                bar.update(finished)
    bar.close()


def evaluate_gans(config: StudyConfig, runs: Sequence[RunSpec], out: Path, progress: bool = False) -> None:
    """Evaluate every trained GAN of ``runs`` once (``gans/<key>/metrics.json``, see :mod:`medgan_aug.apps.report`).

    All GANs of a study are measured with one in-domain extractor (``out/extractors/``), trained on the
    real training split of the study's file: a measuring instrument only — it takes no part in GAN or
    classifier training, so it cannot leak into the study's numbers.

    Each evaluation runs under its GAN's evaluation lock (:func:`study_lock`): GANs another process is
    evaluating are skipped and waited for at the end, so on return every GAN of ``runs`` is evaluated.
    """

    settings = config.evaluation_settings
    if not settings.enabled:
        return
    groups = sorted({run.group for run in runs if parse_condition(run.condition).needs_gan})
    held_elsewhere = [group for group in groups if not _evaluate_gan(config, group, out, settings, progress)]
    for group in held_elsewhere:
        _evaluate_gan(config, group, out, settings, progress, wait=True)


def _evaluate_gan(
    config: StudyConfig,
    group: tuple[float, int],
    out: Path,
    settings: EvaluationSettings,
    progress: bool,
    wait: bool = False,
) -> bool:
    """Evaluate the GAN of ``group`` unless it is missing or evaluated; False if another process holds it."""
    fraction, seed = group
    run_dir = out / "gans" / gan_key(config, fraction, seed)
    if not (run_dir / "generator.pt").is_file():
        return True
    identity = data_identity(config)  # the extractor is tied to its data: another file gets another one
    data_tag = f"{identity.get('md5', identity['flag'])[:12]}_{identity.get('size') or 'file'}px"
    # the version in the name: a study resumed after an extractor change fits the new one, not the old file
    extractor = (
        out / "extractors" / f"extractor_{EXTRACTOR_VERSION}_{data_tag}_{settings.extractor_iterations}it.pt"
    )
    with work_lock(study_lock(out, f"evaluation-{run_dir.name}"), wait=wait) as held:
        if not held or (run_dir / "metrics.json").is_file():
            return held
        # the first evaluation fits the shared extractor; evaluations in other processes wait for it
        fits = contextlib.nullcontext() if extractor.is_file() else _extractor_lock(out, extractor)
        with fits:
            write_report(
                run_dir,
                real=config.data.get("path"),
                extractor=extractor,
                num_samples=int(settings.num_samples),
                seed=seed,
                extractor_iterations=int(settings.extractor_iterations),
                repeats=int(settings.repeats),
                progress=progress,
                device=process_device(config),
            )
    logger.info("evaluated GAN %s (fraction=%g seed=%d)", run_dir.name, fraction, seed)
    return True


@contextlib.contextmanager
def _extractor_lock(out: Path, extractor: Path) -> Iterator[None]:
    with work_lock(study_lock(out, f"extractor-{extractor.stem}"), wait=True):
        yield
