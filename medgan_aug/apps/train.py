"""Training a GAN run: the low-data subset, the run folder (config, checkpoints, samples, losses,
generator file) and exact resume. Its settings are :class:`GANConfig` (:mod:`medgan_aug.apps.train_config`);
``medgan-aug train`` is a thin layer over :func:`train_gan`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import platform
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan_aug.apps.train_config import GANConfig
from medgan_aug.apps.train_dcgan import build_gan_trainer
from medgan_aug.apps.train_diffusion import build_diffusion_trainer
from medgan_aug.apps.train_resume import (
    check_iterations,
    check_resume_record,
    check_run_folder,
    remove_run_orphans,
    set_aside_generator,
)
from medgan_aug.data.medmnist import MedMNISTDataset, file_md5
from medgan_aug.data.pools import POOL_LABELLED, load_generator_pool
from medgan_aug.data.sources import dataset_source, require_images
from medgan_aug.data.stratify import low_data_indices
from medgan_aug.engines.distributed import distributed_context, run_on_main
from medgan_aug.engines.gan_trainer import run_seeds
from medgan_aug.handlers.checkpoint import CheckpointManager, PeriodicCheckpoint
from medgan_aug.handlers.loss_log import LossCSV
from medgan_aug.handlers.progress import IterationProgress
from medgan_aug.handlers.sample_grid import SampleGrid
from medgan_aug.handlers.tensorboard import TensorBoardRun, generator_scalar_tags, output_scalars
from medgan_aug.networks.dcgan import standing_batchnorm_stats
from medgan_aug.networks.model_file import save_generator, save_model
from medgan_aug.utils.atomic import atomic_write_text
from medgan_aug.utils.devices import torch_thread_count

__all__ = ["GANConfig", "GANSubset", "load_gan_subset", "cap_batch_size", "build_gan_trainer", "train_gan"]


logger = logging.getLogger("medgan_aug.apps.train")


@dataclass
class GANSubset:
    """The labelled subset of a run and the pool its generator trains on (:mod:`medgan_aug.data.pools`).

    ``images``/``targets``/``labels``/``indices``: the labelled subset (its labels are the generator's label
    pool: sample grids, exported ``train_labels``). ``pool_images``/``pool_targets``/``pool_labelled``: what
    the generator trains on (the same tensors as the subset's for ``pool="labelled"``); ``pool_targets`` is
    zero on unlabelled rows, which ``pool_labelled`` marks False. ``pool_info``: the pool's record.
    """

    images: torch.Tensor  # (n, C, H, W) in [-1, 1]
    targets: torch.Tensor  # (n, L') float label vectors
    labels: np.ndarray  # (n, L) as stored in the file
    indices: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    pool_images: torch.Tensor | None = None  # (N, C, H, W) in [-1, 1]
    pool_targets: torch.Tensor | None = None  # (N, L'), zeros on unlabelled rows
    pool_labelled: torch.Tensor | None = None  # (N,) bool
    pool_info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pool_images is None:  # no pool given: the labelled subset
            self.pool_images, self.pool_targets = self.images, self.targets
            self.pool_labelled = torch.ones(len(self.images), dtype=torch.bool)
            self.pool_info = self.pool_info or {"pool": POOL_LABELLED, "num_images": len(self.images)}

    @property
    def unlabelled_pool(self) -> bool:
        """Whether the pool is another than the labelled subset (``pool != "labelled"``: recorded in the run,
        and a conditional generator gets the labelled mask)."""
        return bool(self.pool_info.get("pool", POOL_LABELLED) != POOL_LABELLED)


def _generator_images(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, H, W[, C])`` -> float ``(N, C, H, W)`` in G's range [-1, 1]."""
    raw = torch.from_numpy(np.ascontiguousarray(images))
    raw = raw.unsqueeze(1) if raw.ndim == 3 else raw.permute(0, 3, 1, 2)
    return raw.float().div_(127.5).sub_(1.0).contiguous()


def load_gan_subset(config: GANConfig) -> GANSubset:
    """The labelled subset of ``config``'s data and the generator's pool (``config.pool``).

    Raises:
        medgan_aug.utils.MedMNISTFileError: an unusable data or pool file (one line naming it); nothing
            is written before this returns.
    """
    ds = MedMNISTDataset(split="train", **dataset_source(config.to_dict()))
    require_images(ds, "training a GAN")
    idx = low_data_indices(ds.labels, fraction=config.fraction, seed=config.subset_seed)
    images = _generator_images(ds.images[idx])
    targets = torch.from_numpy(ds.targets[idx].copy())
    pool = load_generator_pool(config.pool, ds, idx)
    if config.pool == POOL_LABELLED:
        pool_tensors: tuple[Any, ...] = (images, targets, torch.from_numpy(pool.labelled.copy()))
    else:
        pool_tensors = (
            _generator_images(pool.images),
            torch.from_numpy(pool.targets(ds.targets[idx])),
            torch.from_numpy(pool.labelled.copy()),
        )
    digest = hashlib.sha256(np.asarray(idx, dtype="<i8").tobytes()).hexdigest()
    info = {
        "source": os.fspath(ds.source),
        "source_md5": file_md5(ds.source),
        "flag": ds.flag,
        "task": ds.task,
        "label_names": list(ds.label_names),
        "num_labels": int(ds.num_labels),
        "num_channels": int(ds.num_channels),
        "train_size": int(len(ds.labels)),
        "subset": {
            "fraction": config.fraction,
            "subset_seed": config.subset_seed,
            "num_images": int(len(idx)),
            "indices_sha256": digest,
            "indices": [int(i) for i in idx] if len(idx) <= 20000 else None,
        },
    }
    return GANSubset(images, targets, ds.labels[idx], idx, info, *pool_tensors, pool.info)


def cap_batch_size(config: GANConfig, num_images: int, warn: bool = True) -> GANConfig:
    """``config`` with ``batch_size`` at most ``num_images`` (with a warning when it was larger).

    A batch larger than the training subset only repeats its images in every batch, at the memory cost of
    the asked size; the capped value is what the run records and trains with.
    """
    if config.batch_size <= num_images:
        return config
    if warn:
        warnings.warn(
            f"batch_size {config.batch_size} is larger than the {num_images} training images: capped at "
            f"{num_images}",
            stacklevel=4,
        )
    return dataclasses.replace(config, batch_size=num_images)


def _run_record(config: GANConfig, subset: GANSubset, epoch_length: int, precision: str) -> dict[str, Any]:
    import monai

    record = {
        "config": config.to_dict(),
        "precision_used": precision,  # what precision="auto" resolved to on this machine
        "data": {k: v for k, v in subset.info.items() if k != "subset"},
        "subset": subset.info["subset"],
        "epoch_length": epoch_length,
        "versions": {
            "torch": torch.__version__,
            "monai": monai.__version__,
            "python": platform.python_version(),
        },
    }
    if subset.unlabelled_pool:  # the labelled pool is the subset: its record is the one runs always had
        record["pool"] = subset.pool_info
    return record


def train_gan(config: GANConfig, handlers: Sequence | None = None) -> Path:
    """Train a (conditional) DCGAN, or with ``model="ddpm"`` a diffusion generator
    (:mod:`medgan_aug.apps.train_diffusion`), on the configured low-data subset, or on a pool of images around
    it (``config.pool``, :mod:`medgan_aug.data.pools`); return the run directory.

    The run directory gets ``config.json`` (resolved config, data, subset record), ``checkpoints/``,
    ``samples/iter_*.png``, ``losses.csv`` and, when all iterations are done, ``generator.pt`` (the EMA
    generator via :func:`medgan_aug.networks.save_generator`). Its meta and ``config.json`` then record
    ``training_seconds``: the wall time of every session of the run (each checkpoint carries the count so
    far, so a killed session counts up to its last checkpoint).

    ``out`` must be a new or empty folder, or (with ``resume``) one that holds this run: any other file in it
    is refused by name, never replaced. A batch larger than the training subset is capped at its size (with
    a warning; the run records the capped value).

    ``resume=True`` continues from the newest readable checkpoint, bit-identically on CPU; in a folder
    killed before its first checkpoint it starts again from iteration 0 (with a warning), and a folder that
    holds no run yet (missing, empty, or only temporary files of killed writes: killed before its
    ``config.json``) starts the run fresh, with a one-line warning. A resumed run
    may change ``iterations`` (e.g. extend a finished run) when the learning-rate schedule is
    ``"constant"``: the result equals a run trained to the new total directly, and an earlier
    ``generator.pt`` is renamed ``generator_<iterations>.pt``. Temporary files of killed writes are removed
    at the start (:mod:`medgan_aug.apps.train_resume`).

    Under ``torchrun`` with several processes the run is data-parallel over the global batch
    ``config.batch_size`` and only rank 0 writes the run directory (:mod:`medgan_aug.engines.distributed`).

    Args:
        config: the run's :class:`GANConfig`.
        handlers: extra ignite/MONAI handlers (objects with ``attach(engine)``), attached after the
            run-directory handlers (e.g. ``monai.handlers.StatsHandler``).

    Raises:
        FileExistsError: ``out`` already holds a run and ``resume`` is False.
        medgan_aug.utils.OutputNotOursError: ``out`` is a file, or a folder with files but no GAN run (the
            first of them is named; nothing is changed).
        medgan_aug.utils.ResumeError: the resumed run's configuration or subset differs, or its
            ``iterations`` changes where that would not equal a direct run (the message says what to run).
        GANDivergenceError: a loss became NaN/inf (the message names the iteration).
        medgan_aug.utils.CheckpointError: no readable checkpoint, or an unsafe one.
    """
    if not isinstance(config, GANConfig):
        raise TypeError(f"config must be a GANConfig, got {type(config).__name__}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(torch_thread_count(config.threads))

    try:
        with distributed_context(config.device) as shard:  # None unless started by torchrun with >1 process
            return _train_gan(config, handlers, shard)
    finally:
        torch.set_num_threads(previous_threads)


def _load_resume_state(
    config: GANConfig, run_dir: Path, manager: CheckpointManager, record: dict[str, Any], map_location: Any
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Check the run folder against ``record``; return the newest readable checkpoint (None: none yet)
    and the saved run record."""
    saved = check_resume_record(run_dir, record)
    loaded = manager.load_latest(map_location=map_location)
    state = None if loaded is None else loaded[0]
    saved_total = int(saved.get("config", {}).get("iterations", config.iterations))
    start = 0 if state is None else int(state["iteration"])
    check_iterations(run_dir, saved_total, config.iterations, start, config.lr_schedule)
    return state, saved


def _train_gan(config: GANConfig, handlers: Sequence | None, shard: Any = None) -> Path:
    """:func:`train_gan`'s steps: check the run folder, load the subset, build the trainer, resume, write
    ``config.json``, attach the handlers, train, export the generator."""
    started = time.perf_counter()
    run_dir = Path(config.out)
    manager = CheckpointManager(run_dir / "checkpoints", config.n_saved)
    main = shard is None or shard.is_main  # only the main process writes the run directory
    resume = _check_run_folder(config, run_dir, shard, main)
    subset = load_gan_subset(config)
    if config.conditional and subset.info["num_labels"] == 0:
        raise ValueError("conditional=True but the data has no labels")
    config = cap_batch_size(config, len(subset.pool_images), main)
    trainer = _build_trainer(config, subset, shard)
    trainer.session_started = started  # this session's time includes loading the data
    record = _run_record(config, subset, trainer.state.epoch_length, trainer.precision)
    start: int | None = None
    saved: dict[str, Any] = {}
    if resume:
        start, saved = _resume(config, run_dir, manager, record, trainer, shard)
    if main:
        for path in remove_run_orphans(run_dir, manager):
            logger.info("removed %s, left by a killed write", path)
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(record, indent=2) + "\n")
    label_pool = subset.targets if config.conditional else None  # the labelled subset's labels only
    own = _run_handlers(config, trainer, run_dir, manager, start, label_pool) if main else []
    if config.progress and main:
        own.append(IterationProgress())  # total, start and label from the trainer
    for handler in [*own, *(handlers or [])]:
        handler.attach(trainer)

    trainer.run()
    if start is not None and start >= config.iterations:  # nothing trained now: keep the recorded total
        seconds = float(saved.get("training_seconds", trainer.prior_seconds))
    else:
        seconds = trainer.training_seconds()
    if trainer.state.iteration < config.iterations:
        warnings.warn(
            f"training stopped at iteration {trainer.state.iteration} of {config.iterations}; "
            f"continue with resume=True (--resume). No generator.pt was written.",
            stacklevel=2,
        )
        return run_dir
    if not main:
        shard.barrier()  # wait for rank 0 to write generator.pt
        return run_dir
    _export_generator(config, subset, trainer, record, seconds, label_pool)
    if shard is not None:
        shard.barrier()
    return run_dir


def _check_run_folder(config: GANConfig, run_dir: Path, shard: Any, main: bool) -> bool:
    """Whether this session resumes a run in ``run_dir``: refuses a folder that holds files but no run, and
    one that holds a run unless ``config.resume``; warns when ``resume`` finds no run yet."""
    holds_run = run_on_main(shard, lambda: check_run_folder(run_dir))  # refuses a folder that is not ours
    if holds_run and not config.resume:
        raise FileExistsError(
            f"{run_dir} already holds a GAN run; pass resume=True (--resume) or choose a new --out"
        )
    if config.resume and not holds_run and main:
        warnings.warn(f"--resume: {run_dir} holds no run yet; starting it fresh", stacklevel=4)
    return config.resume and holds_run


def _build_trainer(config: GANConfig, subset: GANSubset, shard: Any) -> Any:
    """The trainer of the run's generator family: :func:`build_gan_trainer` (dcgan, data-parallel under
    ``shard``) or :func:`build_diffusion_trainer` (ddpm, one process)."""
    if config.model == "ddpm":
        if shard is not None:
            raise ValueError(
                "--model ddpm does not train data-parallel under torchrun yet: run it in one process"
            )
        return build_diffusion_trainer(config, subset)
    return build_gan_trainer(config, subset, shard=shard)


def _resume(
    config: GANConfig,
    run_dir: Path,
    manager: CheckpointManager,
    record: dict[str, Any],
    trainer: Any,
    shard: Any,
) -> tuple[int | None, dict[str, Any]]:
    """Load the newest checkpoint into ``trainer`` (after checking the folder's record against ``record``);
    return the iteration it resumes from (None: no checkpoint yet, training starts again) and the saved
    record. A run extended to more iterations sets its finished ``generator.pt`` aside."""
    main = shard is None or shard.is_main
    start = None
    where = trainer.state.device if shard is None else "cpu"
    state, saved = run_on_main(shard, lambda: _load_resume_state(config, run_dir, manager, record, where))
    if state is None:
        if main:
            warnings.warn(
                f"--resume: {run_dir} has no checkpoint yet (the run stopped before its first one); nothing "
                "was lost: training starts again from iteration 0",
                stacklevel=4,
            )
    else:
        trainer.load_training_state(state)
        start = int(state["iteration"])
        if main:
            manager.remove_after(start)
    saved_total = int(saved.get("config", {}).get("iterations", config.iterations))
    if main and saved_total != config.iterations:
        aside = set_aside_generator(run_dir, saved_total)
        if aside is not None:
            warnings.warn(
                f"--resume: the run in {run_dir} continues from {saved_total} to {config.iterations} "
                f"iterations; its generator.pt of iteration {saved_total} is now {aside.name}",
                stacklevel=4,
            )
    return start, saved


def _run_handlers(
    config: GANConfig,
    trainer: Any,
    run_dir: Path,
    manager: CheckpointManager,
    start: int | None,
    label_pool: torch.Tensor | None,
) -> list[Any]:
    """The main process's run-folder handlers: the loss log, periodic checkpoints, fixed-noise sample grids
    (conditioned on labels drawn in turn from ``label_pool``) and, if asked, TensorBoard."""
    seeds = run_seeds(config.seed)
    fixed = torch.Generator().manual_seed(seeds["fixed_noise"])
    latent_dim = config.latent_dim if config.model == "dcgan" else trainer.generator.latent_dim
    z = torch.randn(config.n_samples, latent_dim, generator=fixed)
    fixed_labels = None
    if label_pool is not None:
        fixed_labels = label_pool[torch.arange(config.n_samples) % len(label_pool)]
    own = [
        LossCSV(run_dir / "losses.csv", start, getattr(trainer, "loss_columns", None)),
        PeriodicCheckpoint(manager, config.checkpoint_every),
        SampleGrid(
            run_dir / "samples",
            config.sample_every,
            z,
            fixed_labels,
            label_pool,
            config.standing_stats_batches,
            seeds["standing"],
        ),
    ]
    if config.tensorboard is not None:  # after SampleGrid: it adds the grids SampleGrid saves
        scalars = output_scalars(generator_scalar_tags(trainer))
        own.append(TensorBoardRun(config.tensorboard, scalars, run_dir / "samples"))
    return own


def _generator_meta(config: GANConfig, subset: GANSubset, seconds: float) -> dict[str, Any]:
    """What ``generator.pt`` records beside the weights: the data, subset, recipe and training time."""
    meta = {
        "flag": subset.info["flag"],
        "task": subset.info["task"],
        "label_names": subset.info["label_names"],
        "conditional": bool(config.conditional),
        "train_labels": torch.from_numpy(np.ascontiguousarray(subset.labels)),
        "fraction": config.fraction,
        "subset_seed": config.subset_seed,
        "num_images": int(len(subset.indices)),
        "indices_sha256": subset.info["subset"]["indices_sha256"],
        "iterations": config.iterations,
        "image_size": config.size,
        "seed": config.seed,
        "ema_decay": config.ema_decay,
        "source": subset.info["source"],
        "training_seconds": seconds,
    }
    if subset.unlabelled_pool:
        meta.update(pool=config.pool, pool_images=int(len(subset.pool_images)))
    return meta


def _export_generator(
    config: GANConfig,
    subset: GANSubset,
    trainer: Any,
    record: dict[str, Any],
    seconds: float,
    label_pool: torch.Tensor | None,
) -> None:
    """Write the finished run: ``training_seconds`` into ``config.json``, then the EMA generator (a DCGAN's
    with re-estimated BatchNorm statistics) as ``generator.pt``."""
    run_dir = Path(config.out)
    if config.model == "dcgan":
        ema = standing_batchnorm_stats(
            copy.deepcopy(trainer.generator_ema),
            label_pool,
            config.standing_stats_batches,
            seed=run_seeds(config.seed)["standing"],
        ).cpu()
    else:  # no BatchNorm in the diffusion UNet (GroupNorm): nothing to re-estimate
        ema = copy.deepcopy(trainer.generator_ema).cpu().eval()
    meta = _generator_meta(config, subset, seconds)
    # config.json first: a kill before generator.pt just redoes the export
    record["training_seconds"] = seconds
    atomic_write_text(run_dir / "config.json", json.dumps(record, indent=2) + "\n")
    if config.model == "dcgan":
        save_generator(ema, run_dir / "generator.pt", meta)
    else:
        meta.update(
            model=config.model,
            sampling_steps=config.sampling_steps,
            guidance_scale=ema.guidance_scale,
            label_dropout=config.label_dropout,
        )
        save_model(ema, run_dir / "generator.pt", meta)
