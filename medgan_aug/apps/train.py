"""Training a GAN run: :class:`GANConfig`, the low-data subset, the run folder (config, checkpoints, samples,
losses, generator file) and exact resume. ``medgan-aug train`` is a thin layer over :func:`train_gan`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import platform
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan_aug.data.batches import SeededBatches
from medgan_aug.data.medmnist import MedMNISTDataset, file_md5
from medgan_aug.data.stratify import low_data_indices
from medgan_aug.engines.distributed import (
    ShardedBatches,
    ShardedDiffAugment,
    distributed_context,
    run_on_main,
)
from medgan_aug.engines.gan_trainer import (
    LOSSES,
    LR_SCHEDULES,
    GANTrainer,
    lr_lambda,
    run_seeds,
)
from medgan_aug.handlers.checkpoint import CheckpointManager, PeriodicCheckpoint
from medgan_aug.handlers.loss_log import LossCSV
from medgan_aug.handlers.progress import IterationProgress
from medgan_aug.handlers.sample_grid import SampleGrid
from medgan_aug.networks.dcgan import DCGANDiscriminator, DCGANGenerator, standing_batchnorm_stats
from medgan_aug.networks.model_file import save_generator
from medgan_aug.transforms.diffaugment import DiffAugment
from medgan_aug.utils.atomic import atomic_write_text
from medgan_aug.utils.devices import resolve_device

__all__ = ["GANConfig", "GANSubset", "load_gan_subset", "build_gan_trainer", "train_gan"]


# config fields that may differ between a run and its resume
# Settings a resumed run may change: how it runs, and where the run folder and the data file are (a moved
# folder or a differently spelled path resumes; the data itself is checked by its MD5 and subset hash).
_RESUME_FREE = ("resume", "progress", "device", "threads", "out", "path", "sample", "root", "download")


@dataclass
class GANConfig:
    """Everything a GAN run depends on; mirrors ``medgan-aug train`` options one to one.

    Data:
        path: a MedMNIST-format ``.npz`` (e.g. ``../shared/data/nih1000_chestmnist.npz``); or None to use
            the official file of ``flag`` under ``root`` (``download=True`` fetches it).
        sample: instead of ``path``, a real sample shipped in the package (``"nih1000"``).
        flag: MedMNIST flag (label layout of the file). size: 28 or 64.
        fraction / subset_seed: the low-data subset of train the GAN sees
            (:func:`medgan_aug.data.low_data_indices`).
    Model:
        conditional: condition G and D on the label vector. latent_dim, base_channels: network sizes.
        spectral_norm: spectral normalisation in D.
    Optimisation:
        iterations: number of G steps. batch_size. loss: ``"bce"`` (non-saturating) or ``"hinge"``.
        lr_g, lr_d, beta1, beta2: Adam settings (DCGAN: 2e-4, (0.5, 0.999)). lr_schedule:
        ``"constant"``, ``"linear"`` or ``"cosine"`` decay to 0 over ``iterations``. d_steps: D updates per
        G update. ema_decay: EMA of G (0 disables; the live G is then exported). diffaugment: policy
        string (``""`` disables). r1_gamma: R1 weight (0 disables).
    Run:
        seed: fixes everything random. out: run directory. resume: continue from its latest good
        checkpoint. checkpoint_every / n_saved: checkpoint period (iterations) and rotation depth.
        sample_every / n_samples: sample-grid period and size. standing_stats_batches: batches used
        to re-estimate the sampled generator's BatchNorm statistics (0: keep G's running stats).
        device: ``"cpu"``, ``"cuda"``, ``"auto"``. threads: torch CPU threads during training (None: leave
        torch's setting; 1 is fastest on a loaded shared machine). progress: show a progress bar.
    """

    path: str | None = None
    sample: str | None = None
    flag: str = "chestmnist"
    root: str | None = None
    download: bool = False
    size: int = 28
    fraction: float = 1.0
    subset_seed: int = 0
    conditional: bool = False
    latent_dim: int = 100
    base_channels: int = 64
    spectral_norm: bool = False
    iterations: int = 2000
    batch_size: int = 64
    loss: str = "bce"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_schedule: str = "constant"
    d_steps: int = 1
    ema_decay: float = 0.999
    diffaugment: str = "color,translation,cutout"
    r1_gamma: float = 0.0
    seed: int = 0
    out: str = "runs/gan"
    resume: bool = False
    checkpoint_every: int = 500
    n_saved: int = 3
    sample_every: int = 500
    n_samples: int = 64
    standing_stats_batches: int = 16
    device: str = "cpu"
    threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        def positive_int(name: str, minimum: int = 1) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"GANConfig.{name} must be an integer >= {minimum}, got {value!r}")
            setattr(self, name, int(value))

        for name in (
            "latent_dim",
            "base_channels",
            "iterations",
            "batch_size",
            "d_steps",
            "checkpoint_every",
            "n_saved",
            "sample_every",
            "n_samples",
        ):
            positive_int(name)
        for name in ("subset_seed", "seed", "standing_stats_batches"):
            positive_int(name, 0)
        if self.size not in (28, 64):
            raise ValueError(f"GANConfig.size must be 28 or 64, got {self.size!r}")
        if not isinstance(self.fraction, (int, float)) or not 0.0 < float(self.fraction) <= 1.0:
            raise ValueError(f"GANConfig.fraction must be in (0, 1], got {self.fraction!r}")
        self.fraction = float(self.fraction)
        if self.loss not in LOSSES:
            raise ValueError(f"GANConfig.loss must be one of {LOSSES}, got {self.loss!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"GANConfig.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        for name in ("lr_g", "lr_d"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"GANConfig.{name} must be a positive number, got {value!r}")
        for name in ("beta1", "beta2", "ema_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"GANConfig.{name} must be in [0, 1), got {value!r}")
        if (
            not isinstance(self.r1_gamma, (int, float))
            or not math.isfinite(self.r1_gamma)
            or self.r1_gamma < 0
        ):
            raise ValueError(f"GANConfig.r1_gamma must be a number >= 0, got {self.r1_gamma!r}")
        if not isinstance(self.diffaugment, str):
            raise TypeError(
                f"GANConfig.diffaugment must be a policy string, got {type(self.diffaugment).__name__}"
            )
        DiffAugment(self.diffaugment)  # validates the policy names
        if self.threads is not None:
            positive_int("threads")
        if self.device not in ("cpu", "auto") and not str(self.device).startswith("cuda"):
            raise ValueError(f"GANConfig.device must be 'cpu', 'cuda[:N]' or 'auto', got {self.device!r}")
        if self.path is not None:
            self.path = os.fspath(self.path)
        if self.root is not None:
            self.root = os.fspath(self.root)
        self.out = os.fspath(self.out)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class GANSubset:
    images: torch.Tensor  # (n, C, H, W) in [-1, 1]
    targets: torch.Tensor  # (n, L') float label vectors
    labels: np.ndarray  # (n, L) as stored in the file
    indices: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def load_gan_subset(config: GANConfig) -> GANSubset:

    ds = MedMNISTDataset(
        flag=config.flag,
        split="train",
        size=config.size,
        root=config.root,
        path=config.path,
        sample=config.sample,
        download=config.download,
    )
    idx = low_data_indices(ds.labels, fraction=config.fraction, seed=config.subset_seed)
    raw = torch.from_numpy(np.ascontiguousarray(ds.images[idx]))
    raw = raw.unsqueeze(1) if raw.ndim == 3 else raw.permute(0, 3, 1, 2)
    images = raw.float().div_(127.5).sub_(1.0).contiguous()
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
    return GANSubset(images, torch.from_numpy(ds.targets[idx].copy()), ds.labels[idx], idx, info)


def build_gan_trainer(
    config: GANConfig, subset: GANSubset, handlers: Sequence | None = None, shard: Any = None
) -> GANTrainer:
    """Networks, optimisers, schedulers, augmentation and the :class:`GANTrainer` for ``config``.

    ``shard`` (a :class:`medgan_aug.engines.Shard`, under torchrun) makes it data-parallel: synchronised
    BatchNorm, rank 0's initial weights, and this rank's slice of every batch, noise and augmentation draw.
    """
    seeds = run_seeds(config.seed)
    torch.manual_seed(seeds["init"])
    np.random.seed(seeds["init"] % (2**32))
    random.seed(seeds["init"])
    device = resolve_device(config.device) if shard is None else shard.device
    num_labels = subset.info["num_labels"] if config.conditional else 0
    channels = subset.info["num_channels"]
    G = DCGANGenerator(config.size, config.latent_dim, num_labels, config.base_channels, channels).to(device)
    D = DCGANDiscriminator(config.size, num_labels, config.base_channels, channels, config.spectral_norm).to(
        device
    )
    if shard is not None:
        G, D = shard.prepare(G), shard.prepare(D)
    g_opt = torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=(config.beta1, config.beta2))
    d_opt = torch.optim.Adam(D.parameters(), lr=config.lr_d, betas=(config.beta1, config.beta2))
    g_sched = d_sched = None
    fn = lr_lambda(config.lr_schedule, config.iterations)
    if fn is not None:
        g_sched = torch.optim.lr_scheduler.LambdaLR(g_opt, fn)
        d_sched = torch.optim.lr_scheduler.LambdaLR(d_opt, fn)
    augment = DiffAugment(config.diffaugment, seed=seeds["augment"]) if config.diffaugment.strip() else None
    batch_args = (
        subset.images.to(device),
        subset.targets.to(device) if num_labels else None,
        config.batch_size,
        seeds["data"],
    )
    if shard is None:
        batches = SeededBatches(*batch_args)
    else:
        batches = ShardedBatches(*batch_args, shard)
        augment = None if augment is None else ShardedDiffAugment(augment, shard)
    trainer = GANTrainer(
        device,
        G,
        D,
        g_opt,
        d_opt,
        batches,
        config.iterations,
        loss=config.loss,
        d_steps=config.d_steps,
        ema_decay=config.ema_decay,
        augment=augment,
        r1_gamma=config.r1_gamma,
        g_scheduler=g_sched,
        d_scheduler=d_sched,
        noise_seed=seeds["noise"],
        train_handlers=handlers,
        shard=shard,
    )
    if shard is not None:
        shard.unsync(trainer.generator_ema)  # the EMA copy only ever runs on rank 0
    return trainer


def _run_record(config: GANConfig, subset: GANSubset, epoch_length: int) -> dict[str, Any]:
    import monai

    return {
        "config": config.to_dict(),
        "data": {k: v for k, v in subset.info.items() if k != "subset"},
        "subset": subset.info["subset"],
        "epoch_length": epoch_length,
        "versions": {
            "torch": torch.__version__,
            "monai": monai.__version__,
            "python": platform.python_version(),
        },
    }


def _check_resume(run_dir: Path, record: dict[str, Any]) -> None:
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"--resume: {path} not found; {run_dir} is not a GAN run directory")
    try:
        saved = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"--resume: {path} is not valid JSON: {err}") from err
    old, new = saved.get("config", {}), record["config"]
    diff = sorted(k for k in set(old) | set(new) if k not in _RESUME_FREE and old.get(k) != new.get(k))
    if diff:
        details = "; ".join(f"{k}: saved {old.get(k)!r} vs now {new.get(k)!r}" for k in diff)
        raise ValueError(f"--resume: the configuration differs from the run in {run_dir}: {details}")
    old_md5, new_md5 = saved.get("data", {}).get("source_md5"), record["data"]["source_md5"]
    if old_md5 is not None and old_md5 != new_md5:
        raise ValueError(
            f"--resume: the data file {record['data']['source']} (MD5 {new_md5}) is not the one the run in "
            f"{run_dir} was trained on ({saved['data'].get('source')}, MD5 {old_md5})"
        )
    if saved.get("subset", {}).get("indices_sha256") != record["subset"]["indices_sha256"]:
        raise ValueError(
            f"--resume: the training subset differs from the one recorded in {path} (data file changed?)"
        )


def train_gan(config: GANConfig, handlers: Sequence | None = None) -> Path:
    """Train a (conditional) DCGAN on the configured low-data subset; return the run directory.

    The run directory gets ``config.json`` (resolved config, data, subset record), ``checkpoints/``,
    ``samples/iter_*.png``, ``losses.csv`` and, when all iterations are done, ``generator.pt`` (the EMA
    generator via :func:`medgan_aug.networks.save_generator`).

    Under ``torchrun`` with several processes the run is data-parallel over the global batch
    ``config.batch_size`` and only rank 0 writes the run directory (:mod:`medgan_aug.engines.distributed`).

    Args:
        config: the run's :class:`GANConfig`.
        handlers: extra ignite/MONAI handlers (objects with ``attach(engine)``), attached after the
            run-directory handlers (e.g. ``monai.handlers.StatsHandler``).

    Raises:
        FileExistsError: ``out`` already holds a run and ``resume`` is False.
        FileNotFoundError: ``resume`` without a run or checkpoint to resume from.
        ValueError: the resumed run's configuration or subset differs.
        GANDivergenceError: a loss became NaN/inf (the message names the iteration).
        medgan_aug.utils.CheckpointError: no readable checkpoint, or an unsafe one.
    """
    if not isinstance(config, GANConfig):
        raise TypeError(f"config must be a GANConfig, got {type(config).__name__}")
    previous_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)

    try:
        with distributed_context(config.device) as shard:  # None unless started by torchrun with >1 process
            return _train_gan(config, handlers, shard)
    finally:
        torch.set_num_threads(previous_threads)


def _train_gan(config: GANConfig, handlers: Sequence | None, shard: Any = None) -> Path:

    run_dir = Path(config.out)
    manager = CheckpointManager(run_dir / "checkpoints", config.n_saved)
    main = shard is None or shard.is_main  # only the main process writes the run directory
    subset = load_gan_subset(config)
    if config.conditional and subset.info["num_labels"] == 0:
        raise ValueError("conditional=True but the data has no labels")

    def check_new_run() -> None:
        if not config.resume and ((run_dir / "config.json").exists() or manager.list()):
            raise FileExistsError(
                f"{run_dir} already holds a GAN run; pass resume=True (--resume) or choose a new --out"
            )

    run_on_main(shard, check_new_run)
    trainer = build_gan_trainer(config, subset, shard=shard)
    record = _run_record(config, subset, trainer.state.epoch_length)
    start: int | None = None
    if config.resume:

        def load_resume_state() -> dict[str, Any]:
            _check_resume(run_dir, record)
            loaded = manager.load_latest(map_location=trainer.state.device if shard is None else "cpu")
            if loaded is None:
                raise FileNotFoundError(f"--resume: no checkpoint in {manager.directory}")
            return loaded[0]

        state = run_on_main(shard, load_resume_state)
        trainer.load_training_state(state)
        start = int(state["iteration"])
        if main:
            manager.remove_after(start)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(record, indent=2) + "\n")

    seeds = run_seeds(config.seed)
    fixed = torch.Generator().manual_seed(seeds["fixed_noise"])
    z = torch.randn(config.n_samples, config.latent_dim, generator=fixed)
    pool = subset.targets if config.conditional else None
    fixed_labels = None
    if pool is not None:
        fixed_labels = pool[torch.arange(config.n_samples) % len(pool)]
    own = []
    if main:
        own += [
            LossCSV(run_dir / "losses.csv", start),
            PeriodicCheckpoint(manager, config.checkpoint_every),
            SampleGrid(
                run_dir / "samples",
                config.sample_every,
                z,
                fixed_labels,
                pool,
                config.standing_stats_batches,
                seeds["standing"],
            ),
        ]
    if config.progress and main:
        own.append(IterationProgress())  # total, start and label from the trainer
    for handler in [*own, *(handlers or [])]:
        handler.attach(trainer)

    trainer.run()
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

    ema = standing_batchnorm_stats(
        copy.deepcopy(trainer.generator_ema), pool, config.standing_stats_batches, seed=seeds["standing"]
    ).cpu()
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
    }
    save_generator(ema, run_dir / "generator.pt", meta)
    if shard is not None:
        shard.barrier()
    return run_dir
