"""One downstream classifier run: train on a low-data subset under a study condition, score the test split.

The study's single run, on its own and from the command line, in one process or many::

    medgan-aug classify --path ../shared/data/nih1000_chestmnist.npz --fraction 0.25 \
        --condition real+synthetic@0.5 --run runs/gan --iterations 500 --out runs/cls
    torchrun --nproc_per_node 2 -m medgan_aug classify ...   # the same options; data parallel

Conditions are the study's (:func:`medgan_aug.apps.parse_condition`): ``real``, ``real+classical``,
``real+synthetic@R``, ``real+shuffled@R`` (the placebo), ``real+pseudo@R``, ``real+mixup``, ``real+cutmix``,
those with ``+classical``, ``synthetic-only`` and ``synthetic-pretrain[@N]+real``, built by the study's own
:func:`~medgan_aug.apps.study.conditions.condition_batch_transform`; synthetic ones mix images from
``gan_run``'s EMA generator into every batch with ``MixSyntheticd`` (a share R of the rows replaced).
``synthetic-pretrain[@N]+real`` instead trains N steps (default ``iterations``) on those images alone, then
exactly as ``real`` (:func:`~medgan_aug.apps.study.pretraining.train_arm`); ``losses.csv`` and TensorBoard
hold the real phase, ``metrics.json`` both (``iterations``: real steps, ``synthetic_pretraining``: the
synthetic phase's steps, images, seconds and last loss; ``train_seconds``: both phases).

``real+pseudo@R`` (pseudo-labelling, Lee 2013) and ``synthetic_labels="teacher"`` (``--synthetic-labels
teacher``: generated images labelled with soft scores, what an unconditional generator needs) take a teacher
(:mod:`medgan_aug.apps.teacher`): by default it is trained here first, exactly as ``--condition real`` with the
same options would train it (same seed, so the same classifier), so one command is a whole comparison; or
``teacher`` (``--teacher RUN``) names a finished ``real`` run on the same subset, whose ``classifier.pt`` is
loaded instead of training it again (every classify run keeps its weights). Its training time and weights'
fingerprint are recorded in ``metrics.json`` (``teacher``).
Under ``torchrun`` the classifier trains data-parallel (:func:`medgan_aug.engines.train_classifier`:
``batch_size`` is the global batch) and only rank 0 scores the test split and writes the run folder:

* ``config.json``: the settings, the subset's size and indices, the number of processes;
* ``classifier.pt``: the trained model (:func:`medgan_aug.networks.save_classifier`, weights only);
* ``losses.csv``: the training loss per step (the global-batch mean under data parallelism);
* ``metrics.json``: test AUC/ACC (MedMNIST's definitions), per-finding AUCs, skipped findings, seconds.

A run is short (minutes on a CPU) and writes its folder when it ends; it is not resumed mid-way. ``out``
must be new or empty (temporary files of a killed run's writes aside): an existing run folder is never
overwritten, and a folder with other files is refused by the name of its first file. Empty train or test
splits are refused, naming the file and the split, before any training.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from medgan_aug.apps.classify_config import ClassifierRunConfig
from medgan_aug.apps.study.conditions import condition_batch_transform, parse_condition
from medgan_aug.apps.study.pretraining import train_arm
from medgan_aug.apps.teacher import (
    SYNTHETIC_LABELS,
    pseudo_labelled_pool,
    teacher_labelled_synthetic,
    teacher_labeller,
    train_teacher,
    weights_fingerprint,
)
from medgan_aug.data.medmnist import MedMNISTDataset, output_names
from medgan_aug.data.sources import dataset_source, require_images
from medgan_aug.data.stratify import low_data_indices
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.engines.classifier_trainer import predict, train_classifier
from medgan_aug.engines.distributed import distributed_context, run_on_main
from medgan_aug.handlers.tensorboard import TensorBoardRun, classifier_scalars
from medgan_aug.metrics.classification import evaluate_scores
from medgan_aug.networks.classifiers import CLASSIFIER_NAMES, build_classifier
from medgan_aug.networks.model_file import load_classifier, save_classifier
from medgan_aug.utils.atomic import atomic_write_text
from medgan_aug.utils.devices import resolve_device, torch_thread_count
from medgan_aug.utils.errors import OutputNotOursError
from medgan_aug.utils.outputs import files_under, unknown_files
from medgan_aug.utils.temp_files import orphan_temp_files, remove_orphan_temp_files
from medgan_aug.utils.validation import check_integer

__all__ = ["ClassifierRunConfig", "train_classifier_run"]


_OUTPUTS = ("config.json", "classifier.pt", "losses.csv", "metrics.json")
_OUTPUT_PATTERNS = [re.escape(name) for name in _OUTPUTS]  # their temporary files' targets


def _check_config(config: ClassifierRunConfig) -> Any:
    condition = parse_condition(config.condition)
    if config.classifier not in CLASSIFIER_NAMES:
        raise ValueError(f"classifier must be one of {CLASSIFIER_NAMES}, got {config.classifier!r}")
    if config.score_split not in ("test", "val"):
        raise ValueError(f"score_split must be 'test' or 'val', got {config.score_split!r}")
    if condition.needs_gan and not config.gan_run:
        raise ValueError(
            f"condition {config.condition!r} mixes in generated images: give gan_run (--run), "
            "a run folder written by `medgan-aug train`"
        )
    if not condition.needs_gan and config.gan_run:
        raise ValueError(
            f"gan_run {config.gan_run!r} is only used by synthetic conditions, and condition "
            f"{config.condition!r} has none"
        )
    check_integer("num_synthetic", config.num_synthetic, 1)
    if config.synthetic_labels not in SYNTHETIC_LABELS:
        raise ValueError(
            f"synthetic_labels must be one of {SYNTHETIC_LABELS}, got {config.synthetic_labels!r}"
        )
    if config.synthetic_labels == "teacher" and not condition.needs_gan:
        raise ValueError(
            f"synthetic_labels 'teacher' labels generated images, and condition {config.condition!r} has none"
        )
    if condition.needs_pool and float(config.fraction) >= 1.0:
        raise ValueError(
            f"condition {config.condition!r} mixes in training images outside the labelled subset, and "
            "fraction 1.0 leaves none: use a fraction below 1"
        )
    if config.teacher and not _needs_teacher(config, condition):
        raise ValueError(
            f"teacher {config.teacher!r} is only used by real+pseudo@R and --synthetic-labels teacher, not by "
            f"condition {config.condition!r}"
        )
    return condition


def _needs_teacher(config: ClassifierRunConfig, condition: Any) -> bool:
    return condition.needs_pool or (condition.needs_gan and config.synthetic_labels == "teacher")


def _run_teacher(run: str, indices: list[int], device: torch.device) -> torch.nn.Module:
    """The classifier of a finished ``real`` classify run on the subset ``indices`` (the ``--teacher``)."""
    folder = Path(run)
    try:
        record = json.loads((folder / "config.json").read_text())
        condition, subset = record["config"]["condition"], record["subset_indices"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise FileNotFoundError(
            f"--teacher {run}: no readable config.json of a finished classify run ({err})"
        ) from err
    if condition != "real":
        raise ValueError(f"--teacher {run} is a {condition!r} run; a teacher is a run of condition 'real'")
    if [int(i) for i in subset] != indices:
        raise ValueError(
            f"--teacher {run} was trained on another subset ({len(subset)} images) than this run's "
            f"({len(indices)}): it would see other labels; use the same data, --fraction and --subset-seed"
        )
    if not (folder / "classifier.pt").is_file():
        raise FileNotFoundError(f"--teacher {run} has no classifier.pt: has the run finished?")
    model, _ = load_classifier(folder / "classifier.pt", map_location=device)
    return model.to(device).eval()


def _check_new_run(out: Path) -> None:
    """Refuse ``out`` unless it is new, empty or holds only temporary files of a killed classifier run."""
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise OutputNotOursError(f"--out {out} is a file, not a folder: choose another --out")
    existing = [name for name in _OUTPUTS if (out / name).exists()]
    if existing:
        raise FileExistsError(
            f"{out} already holds a classifier run ({', '.join(existing)}); choose another --out or remove it"
        )
    leftovers = {path.name for path in orphan_temp_files(out, _OUTPUT_PATTERNS)}
    foreign = unknown_files(files_under(out), lambda name: name in leftovers)
    if foreign is not None:
        raise OutputNotOursError(
            f"--out {out} is not empty and holds no classifier run: it {foreign}. classify writes only into a "
            "new or empty folder; nothing in it was changed: choose another --out"
        )


def _open_test_split(data: dict[str, Any], found: dict[str, Any], split: str = "test") -> None:
    """Open the scored split (``test``, or ``val`` with ``--score-split val``) into ``found["test"]`` and
    refuse an empty one, before any training."""
    found["test"] = MedMNISTDataset(split=split, **data)
    require_images(found["test"], f"scoring the classifier on the {split} split")


def _data_kwargs(config: ClassifierRunConfig) -> dict[str, Any]:
    return dataset_source(dataclasses.asdict(config))


def train_classifier_run(config: ClassifierRunConfig) -> Path:
    """Train and score one classifier; under ``torchrun`` data-parallel, with rank 0 writing ``config.out``.

    Returns:
        The run folder.

    Raises:
        FileExistsError: ``out`` already holds a classifier run.
        medgan_aug.utils.OutputNotOursError: ``out`` is a file or a folder with other files.
        FileNotFoundError: the data file or the GAN run is missing.
        medgan_aug.utils.MedMNISTFileError: the data file is unusable, or its train or test split is empty.
        ValueError: an unknown condition or classifier, a synthetic condition without ``gan_run`` (or
            ``gan_run`` with a real-only one), a global batch that does not divide by the processes.
    """

    if not isinstance(config, ClassifierRunConfig):
        raise TypeError(f"config must be a ClassifierRunConfig, got {type(config).__name__}")
    condition = _check_config(config)
    out = Path(config.out)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(torch_thread_count(config.threads))
    try:
        with distributed_context(config.device) as shard:  # None unless torchrun started > 1 process
            main = shard is None or shard.is_main
            run_on_main(shard, lambda: _check_new_run(out))
            found: dict[str, Any] = {}  # rank 0's test split, opened and checked before training
            run_on_main(shard, lambda: _open_test_split(_data_kwargs(config), found, config.score_split))
            device = shard.device if shard is not None else resolve_device(config.device)
            handlers = []  # TensorBoard on the main process only
            if main and config.tensorboard is not None:
                handlers.append(TensorBoardRun(config.tensorboard, classifier_scalars))
            test = found.get("test")
            result = _train_and_score(config, condition, device, shard is not None, test, handlers)
            if main:
                _write_run(out, config, *result, world_size=1 if shard is None else shard.world_size)
            if shard is not None:
                shard.barrier()  # every rank returns once the run folder is complete
    finally:
        torch.set_num_threads(previous_threads)
    return out


def _train_and_score(
    config: ClassifierRunConfig,
    condition: Any,
    device: torch.device,
    distributed: bool,
    test: Any,
    handlers: Sequence[Any] = (),
) -> tuple[Any, list[int], dict, dict | None, list[str]]:
    """Train on the subset (``handlers`` attached to the training engine); score ``test`` (rank 0's test
    split; None on the other ranks)."""
    data = _data_kwargs(config)
    train_all = MedMNISTDataset(split="train", **data)
    require_images(train_all, "training the classifier")
    indices = low_data_indices(train_all.labels, fraction=config.fraction, seed=config.subset_seed)
    train = MedMNISTDataset(split="train", indices=indices, **data)
    source = None
    if condition.needs_gan:
        source = SyntheticDataset.from_run(
            config.gan_run, config.num_synthetic, seed=config.seed
        ).materialize()
        if config.synthetic_labels == "conditional" and not source.has_labels:
            raise ValueError(
                f"--run {config.gan_run} holds an unconditional generator, whose images have no labels: "
                "use --synthetic-labels teacher to label them with the teacher"
            )
    pseudo, teacher_record = None, None
    if _needs_teacher(config, condition):
        teacher_indices = [int(i) for i in indices]
        if config.teacher:
            teacher, seconds = _run_teacher(config.teacher, teacher_indices, device), None
        else:
            teacher, teacher_history = train_teacher(
                train, config.classifier, iterations=config.iterations, batch_size=config.batch_size,
                lr=config.lr, seed=config.seed, device=device, progress=config.progress, distributed=distributed,
            )  # fmt: skip
            seconds = teacher_history["seconds"]
        labeller = teacher_labeller(teacher, train.task, device)
        if condition.needs_pool:
            pseudo = pseudo_labelled_pool(data, indices, labeller)
        if condition.needs_gan:
            source = teacher_labelled_synthetic(source, labeller)
        teacher_record = {
            "source": config.teacher or "trained in this run",
            "train_seconds": seconds,
            "fingerprint": weights_fingerprint(teacher),
            "num_pseudo": 0 if pseudo is None else len(pseudo),
        }
    batch_transform = condition_batch_transform(
        condition, source, shuffle_labels_seed=config.seed, pseudo=pseudo
    )
    model = build_classifier(
        config.classifier, train.num_channels, train.num_labels, train.size, seed=config.seed
    )
    history = train_arm(  # synthetic-pretrain[@N]+real: generated images first, then exactly as real
        model, train, condition, synthetic=source, task=train.task, iterations=config.iterations,
        batch_size=config.batch_size, lr=config.lr, seed=config.seed, batch_transform=batch_transform,
        device=device, progress=config.progress, distributed=distributed, handlers=handlers,
        trainer=train_classifier,
    )  # fmt: skip
    history["teacher"] = teacher_record
    metrics = None
    if test is not None:  # the test split is scored once, by rank 0
        scores, targets = predict(model, test, task=train.task, device=device)
        metrics = evaluate_scores(targets, scores, task=train.task, label_names=output_names(test))
        metrics["n_test"] = len(test)
        metrics["split"] = config.score_split
    return model, [int(i) for i in indices], history, metrics, list(train.label_names)


def _write_run(
    out: Path, config: ClassifierRunConfig, model: Any, indices: list[int], history: dict, metrics: dict | None,
    label_names: list[str], *, world_size: int,
) -> None:  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    remove_orphan_temp_files(out, _OUTPUT_PATTERNS)  # left by a killed run's writes
    settings = dataclasses.asdict(config)
    record = {
        "config": settings,
        "n_train": len(indices),
        "subset_indices": indices,
        "world_size": world_size,
    }
    atomic_write_text(out / "config.json", json.dumps(record, indent=2) + "\n")
    meta = {
        key: settings[key] for key in ("flag", "condition", "fraction", "subset_seed", "seed", "iterations")
    }
    save_classifier(model, out / "classifier.pt", meta={**meta, "label_names": label_names})
    rows = "".join(f"{step},{loss!r}\n" for step, loss in enumerate(history["losses"], start=1))
    atomic_write_text(out / "losses.csv", "step,loss\n" + rows)
    summary = {
        **(metrics or {}),
        "condition": config.condition,
        "world_size": world_size,
        "iterations": history["iterations"],
        "examples_seen": history["examples_seen"],
        "train_seconds": history["seconds"],
        "synthetic_pretraining": history.get("synthetic_pretraining"),
        "teacher": history.get("teacher"),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    atomic_write_text(out / "metrics.json", json.dumps(summary, indent=2) + "\n")
