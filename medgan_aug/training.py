"""GAN training on a low-data MedMNIST subset: a MONAI ``Trainer`` (ignite ``Engine``) with exact resume.

Python API: ``run_dir = train_gan(GANConfig(path="nih1000_chestmnist.npz", conditional=True, ...))``;
the ``medgan-aug train`` command is a thin layer over it.

What one iteration does (:meth:`GANTrainer._iteration`), for a real batch ``x`` with labels ``y``:

1. ``d_steps`` times: fakes ``G(z, y)`` from fresh noise, ``D`` sees ``DiffAugment(x)`` and
   ``DiffAugment(fake)`` (Zhao et al., NeurIPS 2020), loss non-saturating BCE (Goodfellow et al. 2014,
   the DCGAN loss) or hinge (Lim & Ye 2017; Miyato et al. 2018), plus optionally the R1 penalty
   ``gamma/2 E||grad_x D(x)||^2`` on reals (Mescheder, Geiger & Nowozin, ICML 2018); one Adam step.
2. One G step on fresh noise through the same augmentation.
3. EMA of G's weights (Yazici et al., "The Unusual Effectiveness of Averaging in GAN Training",
   ICLR 2019) with the warm-up ``min(decay, (1 + t) / (10 + t))`` of TensorFlow's
   ``ExponentialMovingAverage(num_updates=t)``, so early averages are not dominated by the random
   initialisation; G's BatchNorm buffers are copied.
   The EMA copy is what gets sampled and exported; before sampling/export its BatchNorm statistics are
   re-estimated from ``standing_stats_batches`` batches of noise ("standing statistics", Brock et al.,
   BigGAN, ICLR 2019), so eval-mode samples match the averaged weights.
4. Optional per-iteration learning-rate schedule (linear or cosine decay to 0).

Training is counted in iterations (``GANConfig.iterations``); ignite epochs are reported too
(``epoch_length = max(1, N // batch_size)`` iterations).

Why a subclass of ``monai.engines.Trainer`` (and not ``GanTrainer`` or a bare loop): ``Trainer`` is an
ignite ``Engine`` carrying MONAI's ``Workflow`` state (device, rank, metrics, ``train_handlers``,
``IterationEvents``, ``get_stats``), so ``CheckpointSaver``/``CheckpointLoader`` (given
:meth:`GANTrainer.checkpoint_objects`), ``StatsHandler``, ``TensorBoardStatsHandler`` and ignite's
``ProgressBar`` attach unchanged; the output dict also carries ``GanKeys.GLOSS``/``GanKeys.DLOSS`` as
``GanTrainer`` does. ``GanTrainer`` itself does not fit: it requires a ``DataLoader`` (whose iterator
state cannot be checkpointed, so no exact mid-epoch resume), draws latents from the global RNG, passes
no labels to G or D (no conditioning), and has no place for DiffAugment, R1 or EMA.

Reproducibility: ``seed`` fixes initialisation, noise, augmentation and data order. Batches are computed
from the iteration number (a stream of per-epoch permutations seeded by ``(seed, epoch)``), not from a
``DataLoader`` iterator, and checkpoints hold weights, EMA, optimisers, schedulers, the noise and
DiffAugment generators and the global torch/numpy/python RNG states; so on CPU a run stopped at any
checkpoint and resumed ends bit-identical to an uninterrupted run (tested). Checkpoints are written
atomically and read with ``torch.load(weights_only=True)`` (:mod:`medgan_aug.checkpoint`).

Divergence: a non-finite loss raises :class:`GANDivergenceError` naming the iteration, before any
optimiser step of that iteration; no checkpoint is written after it, so the last good one stays.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import math
import os
import platform
import random
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from ignite.engine import Events
from monai.engines import Trainer
from monai.utils import GanKeys
from torch import nn

from medgan_aug.atomic import atomic_path, atomic_write_text
from medgan_aug.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointManager,
    get_rng_states,
    set_rng_states,
)
from medgan_aug.diffaugment import DiffAugment
from medgan_aug.networks import DCGANDiscriminator, DCGANGenerator, save_generator, to_unit_range

__all__ = [
    "GANConfig",
    "GANTrainer",
    "GANDivergenceError",
    "SeededBatches",
    "LOSSES",
    "LR_SCHEDULES",
    "build_gan_trainer",
    "standing_batchnorm_stats",
    "train_gan",
]

LOSSES = ("bce", "hinge")
LR_SCHEDULES = ("constant", "linear", "cosine")
# config fields that may differ between a run and its resume
# Settings a resumed run may change: how it runs, and where the run folder and the data file are (a moved
# folder or a differently spelled path resumes; the data itself is checked by its MD5 and subset hash).
_RESUME_FREE = ("resume", "progress", "device", "threads", "out", "path", "root", "download")


class GANDivergenceError(RuntimeError):
    """A loss became NaN or infinite; the message names the iteration and the losses."""


# ----------------------------------------------------------------------------- configuration


@dataclass
class GANConfig:
    """Everything a GAN run depends on; mirrors ``medgan-aug train`` options one to one.

    Data:
        path: a MedMNIST-format ``.npz`` (e.g. ``../shared/data/nih1000_chestmnist.npz``); or None to use
            the official file of ``flag`` under ``root`` (``download=True`` fetches it).
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


# ----------------------------------------------------------------------------- data order


class SeededBatches:
    """Batches as a pure function of the iteration number, so the data order is checkpoint-free.

    The sample order is the concatenation of permutations ``perm_e = default_rng([seed, e]).permutation(N)``
    for e = 0, 1, ...; batch ``i`` (0-based) is positions ``[i * B, (i + 1) * B)`` of that stream. So every
    image is seen once per pass, batches larger than the subset work, and resuming at iteration ``i``
    only needs ``i``. Iterating yields the batch for the bound engine's current iteration (ignite fetches
    a batch before incrementing ``state.iteration``), endlessly; ``len()`` is the ignite epoch length.

    Args:
        images: ``(N, C, H, W)`` float tensor in G's range [-1, 1].
        labels: ``(N, L)`` float tensor or None.
        batch_size: B.
        seed: data-order seed.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, batch_size: int, seed: int) -> None:
        if images.ndim != 4 or len(images) == 0:
            raise ValueError(f"images must be a non-empty (N, C, H, W) tensor, got {tuple(images.shape)}")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"labels has {len(labels)} rows but images has {len(images)}")
        self.images, self.labels = images, labels
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.num_items = len(images)
        self.epoch_length = max(1, self.num_items // self.batch_size)
        self._perms: dict[int, np.ndarray] = {}
        self._engine: Any = None

    def bind(self, engine: Any) -> None:
        self._engine = engine

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.pop(min(self._perms))
            self._perms[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.num_items)
        return self._perms[epoch]

    def indices(self, iteration: int) -> np.ndarray:
        """Row indices of batch ``iteration`` (0-based)."""
        start, stop = iteration * self.batch_size, (iteration + 1) * self.batch_size
        parts, pos = [], start
        while pos < stop:
            epoch, offset = divmod(pos, self.num_items)
            take = min(self.num_items - offset, stop - pos)
            parts.append(self._perm(epoch)[offset : offset + take])
            pos += take
        return np.concatenate(parts)

    def batch(self, iteration: int) -> dict[str, torch.Tensor]:
        idx = torch.from_numpy(self.indices(iteration)).to(self.images.device)
        out = {"image": self.images[idx]}
        if self.labels is not None:
            out["label"] = self.labels[idx]
        return out

    def __len__(self) -> int:
        return self.epoch_length

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        counter = 0
        while True:
            iteration = self._engine.state.iteration if self._engine is not None else counter
            counter += 1
            yield self.batch(iteration)


# ----------------------------------------------------------------------------- losses and helpers


def _d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()  # BCE with targets 1 (real) / 0 (fake)


def _g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()  # non-saturating: -log sigmoid(D(G(z)))


def _schedule(kind: str, total: int):
    if kind == "linear":
        return lambda step: max(0.0, 1.0 - step / total)
    if kind == "cosine":
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    return None


@torch.no_grad()
def standing_batchnorm_stats(
    generator: nn.Module,
    labels_pool: torch.Tensor | None = None,
    batches: int = 16,
    batch_size: int = 64,
    seed: int = 0,
) -> nn.Module:
    """Re-estimate a generator's BatchNorm running statistics as the average over ``batches`` batches
    of fresh noise (Brock, Donahue & Simonyan, "Large Scale GAN Training", ICLR 2019: standing stats).

    Args:
        generator: a :class:`DCGANGenerator` (modified in place; returned in eval mode).
        labels_pool: rows to draw conditioning labels from (required if the generator is conditional).
        batches, batch_size: how much noise to average over.
        seed: seed of the noise (and label draws).
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if batches <= 0 or not norms:
        return generator.eval()
    device = next(generator.parameters()).device
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    rng = torch.Generator().manual_seed(int(seed))
    generator.train()
    for _ in range(batches):
        z = torch.randn(batch_size, generator.latent_dim, generator=rng).to(device)
        y = None
        if generator.num_labels:
            if labels_pool is None:
                raise ValueError("labels_pool is required for a conditional generator")
            y = labels_pool[
                torch.randint(len(labels_pool), (batch_size,), generator=rng).to(labels_pool.device)
            ]
            y = y.to(device)
        generator(z, y)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return generator.eval()


# ----------------------------------------------------------------------------- the engine


class GANTrainer(Trainer):
    """DCGAN training as a MONAI ``Trainer`` (see the module docstring for the step and the design).

    Args:
        device: torch device.
        generator, discriminator: the networks (conditional iff ``generator.num_labels > 0``).
        g_optimizer, d_optimizer: their optimisers.
        batches: a :class:`SeededBatches` (bound to this engine here).
        iterations: total number of iterations; the engine stops there.
        loss: ``"bce"`` or ``"hinge"``.
        d_steps: D updates per iteration.
        ema_decay: EMA decay of G's weights (0: no EMA; ``generator_ema`` then mirrors G).
        augment: a :class:`DiffAugment` applied to real and fake D inputs, or None.
        r1_gamma: R1 penalty weight (0: off).
        g_scheduler, d_scheduler: optional per-iteration LR schedulers.
        noise_seed: seed of the latent-noise generator.
        train_handlers: MONAI/ignite handlers (objects with ``attach``), attached at construction.
        shard: a :class:`medgan_aug.distributed.Shard` under ``torchrun`` (None: one process). Then the
            noise is drawn for the global batch and sliced, gradients are averaged over the ranks after
            each backward, and reported losses are means over the ranks.

    Output per iteration (``engine.state.output``): ``loss_d``, ``loss_g``, ``d_real``, ``d_fake`` (mean
    logits of the last D step), ``r1``, ``lr_g``, ``lr_d`` and ``GanKeys.DLOSS`` / ``GanKeys.GLOSS``.
    """

    def __init__(
        self,
        device: str | torch.device,
        generator: DCGANGenerator,
        discriminator: DCGANDiscriminator,
        g_optimizer: torch.optim.Optimizer,
        d_optimizer: torch.optim.Optimizer,
        batches: SeededBatches,
        iterations: int,
        loss: str = "bce",
        d_steps: int = 1,
        ema_decay: float = 0.999,
        augment: DiffAugment | None = None,
        r1_gamma: float = 0.0,
        g_scheduler: Any = None,
        d_scheduler: Any = None,
        noise_seed: int = 0,
        train_handlers: Sequence | None = None,
        shard: Any = None,
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if generator.num_labels != discriminator.num_labels:
            raise ValueError(
                f"generator.num_labels={generator.num_labels} but "
                f"discriminator.num_labels={discriminator.num_labels}"
            )
        super().__init__(
            device=device,
            max_epochs=math.ceil(iterations / batches.epoch_length),
            data_loader=batches,
            epoch_length=batches.epoch_length,
            handlers=train_handlers,
            decollate=False,
        )
        self.generator, self.discriminator = generator, discriminator
        self.generator_ema = copy.deepcopy(generator).eval()
        for p in self.generator_ema.parameters():
            p.requires_grad_(False)
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.g_scheduler, self.d_scheduler = g_scheduler, d_scheduler
        self.batches = batches
        batches.bind(self)
        self.iterations = int(iterations)
        self.loss, self.d_steps, self.ema_decay = loss, int(d_steps), float(ema_decay)
        self.augment, self.r1_gamma = augment, float(r1_gamma)
        self.noise_rng = torch.Generator().manual_seed(int(noise_seed))
        self.conditional = generator.num_labels > 0
        self.shard = shard
        self.add_event_handler(Events.ITERATION_COMPLETED, GANTrainer._stop_when_done)

    # -- loop ---------------------------------------------------------------------------------------
    def _stop_when_done(self) -> None:
        if self.state.iteration >= self.iterations:
            self.terminate()

    def _noise(self, batch: int) -> torch.Tensor:
        if self.shard is not None:  # this rank's rows of the global batch's noise
            z = torch.randn(
                batch * self.shard.world_size, self.generator.latent_dim, generator=self.noise_rng
            )
            return self.shard.slice(z).to(self.state.device)
        return torch.randn(batch, self.generator.latent_dim, generator=self.noise_rng).to(self.state.device)

    def _mean(self, value: torch.Tensor) -> float:
        """A scalar tensor as a float; under torchrun its mean over the ranks (one sync either way)."""
        return value.item() if self.shard is None else self.shard.mean(value)

    def _average_gradients(self, module: nn.Module) -> None:
        if self.shard is not None:
            self.shard.average_gradients(module)

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.augment is None else self.augment(x)

    def _check_finite(self, name: str, value: float, **context: float) -> float:
        """Return ``value`` (a Python float: one sync, no extra tensor ops) or raise on NaN/inf."""
        if not math.isfinite(value):
            extra = ", ".join(f"{k}={v:.4g}" for k, v in context.items())
            raise GANDivergenceError(
                f"GAN training diverged at iteration {self.state.iteration}: {name} is {value}"
                + (f" ({extra})" if extra else "")
                + ". Training stopped; the last good checkpoint is kept. Try a lower learning rate, "
                "--loss hinge, --spectral-norm or --r1-gamma."
            )
        return value

    def _iteration(self, engine: GANTrainer, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:
        G, D = self.generator, self.discriminator
        real = batchdata["image"].to(self.state.device)
        y = batchdata["label"].to(self.state.device) if self.conditional else None
        b = real.shape[0]
        G.train()
        D.train()

        # 1. discriminator
        D.requires_grad_(True)
        r1 = 0.0
        for _ in range(self.d_steps):
            with torch.no_grad():
                fake = G(self._noise(b), y)
            real_in = real.detach().requires_grad_(self.r1_gamma > 0)
            d_real = D(self._aug(real_in), y)
            d_fake = D(self._aug(fake), y)
            loss_d = _d_loss(self.loss, d_real, d_fake)
            if self.r1_gamma > 0:
                (grad,) = torch.autograd.grad(d_real.sum(), real_in, create_graph=True)
                r1 = grad.pow(2).flatten(1).sum(1).mean()
                loss_d = loss_d + 0.5 * self.r1_gamma * r1
                r1 = self._mean(r1)
            ld = self._check_finite("loss_d", self._mean(loss_d))
            self.d_optimizer.zero_grad(set_to_none=True)
            loss_d.backward()
            self._average_gradients(D)
            self.d_optimizer.step()

        # 2. generator
        D.requires_grad_(False)
        fake = G(self._noise(b), y)
        loss_g = _g_loss(self.loss, D(self._aug(fake), y))
        lg = self._check_finite("loss_g", self._mean(loss_g), loss_d=ld)
        self.g_optimizer.zero_grad(set_to_none=True)
        loss_g.backward()
        self._average_gradients(G)
        self.g_optimizer.step()
        D.requires_grad_(True)

        # 3. EMA, 4. schedules
        self._update_ema()
        lr_g, lr_d = self.g_optimizer.param_groups[0]["lr"], self.d_optimizer.param_groups[0]["lr"]
        for scheduler in (self.g_scheduler, self.d_scheduler):
            if scheduler is not None:
                scheduler.step()
        return {
            "loss_d": ld,
            "loss_g": lg,
            "d_real": self._mean(d_real.detach().mean()),
            "d_fake": self._mean(d_fake.detach().mean()),
            "r1": r1,
            "lr_g": lr_g,
            "lr_d": lr_d,
            GanKeys.DLOSS: ld,
            GanKeys.GLOSS: lg,
        }

    @torch.no_grad()
    def _update_ema(self) -> None:
        t = self.state.iteration
        decay = min(self.ema_decay, (1.0 + t) / (10.0 + t)) if self.ema_decay > 0 else 0.0
        for p_ema, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            p_ema.lerp_(p, 1.0 - decay)
        for b_ema, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
            b_ema.copy_(b)

    # -- state --------------------------------------------------------------------------------------
    def checkpoint_objects(self) -> dict[str, Any]:
        """``save_dict`` / ``load_dict`` for MONAI's ``CheckpointSaver`` / ``CheckpointLoader``.

        (Those handlers checkpoint weights, optimisers and the engine counters; for bit-exact resume
        with RNG and data order use :meth:`training_state` as ``train_gan`` does.)
        """
        objects: dict[str, Any] = {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "generator_ema": self.generator_ema,
            "g_optimizer": self.g_optimizer,
            "d_optimizer": self.d_optimizer,
            "trainer": self,
        }
        if self.g_scheduler is not None:
            objects.update(g_scheduler=self.g_scheduler, d_scheduler=self.d_scheduler)
        return objects

    def training_state(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically, as weights-only-safe data."""

        def sched(s: Any) -> dict | None:
            return None if s is None else s.state_dict()

        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "iteration": int(self.state.iteration),
            "epoch": int(self.state.epoch),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "generator_ema": self.generator_ema.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
            "g_scheduler": sched(self.g_scheduler),
            "d_scheduler": sched(self.d_scheduler),
            "noise_rng": self.noise_rng.get_state(),
            "augment": None if self.augment is None else self.augment.state_dict(),
            "rng": get_rng_states(),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`training_state` output and position the engine at its iteration."""
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.generator_ema.load_state_dict(state["generator_ema"])
        self.g_optimizer.load_state_dict(state["g_optimizer"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])
        for scheduler, key in ((self.g_scheduler, "g_scheduler"), (self.d_scheduler, "d_scheduler")):
            if (scheduler is None) != (state.get(key) is None):
                raise ValueError(f"checkpoint {key} does not match the configured learning-rate schedule")
            if scheduler is not None:
                scheduler.load_state_dict(state[key])
        self.noise_rng.set_state(state["noise_rng"])
        if (self.augment is None) != (state.get("augment") is None):
            raise ValueError("checkpoint DiffAugment state does not match the configured policy")
        if self.augment is not None:
            self.augment.load_state_dict(state["augment"])
        set_rng_states(state["rng"])
        iteration = int(state["iteration"])
        self.state.iteration = iteration
        self.state.epoch = iteration // self.state.epoch_length

    def run(self) -> None:  # type: ignore[override]
        """Train until ``iterations`` (continuing from ``state.iteration`` after a resume)."""
        if self.state.iteration >= self.iterations:
            return
        super().run()


# ----------------------------------------------------------------------------- run-directory handlers


class _LossCSV:
    """Append one row per iteration to ``losses.csv`` (flushed, so a killed run keeps its rows)."""

    COLUMNS = ("iteration", "epoch", "loss_d", "loss_g", "d_real", "d_fake", "r1", "lr_g", "lr_d")

    def __init__(self, path: Path, resume_from: int | None) -> None:
        self.path = path
        if resume_from is not None and path.is_file():  # drop rows past the checkpoint we resume from
            rows = path.read_text().splitlines()
            kept = [rows[0]] + [r for r in rows[1:] if r and int(r.split(",", 1)[0]) <= resume_from]
            atomic_write_text(path, "\n".join(kept) + "\n")
        else:
            atomic_write_text(path, ",".join(self.COLUMNS) + "\n")
        self.fh: io.TextIOBase | None = None

    def attach(self, engine: GANTrainer) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.close)
        engine.add_event_handler(Events.EXCEPTION_RAISED, self._close_and_raise)

    def __call__(self, engine: GANTrainer) -> None:
        if self.fh is None:
            self.fh = open(self.path, "a", newline="")
        out = engine.state.output
        values = [engine.state.iteration, engine.state.epoch] + [f"{out[k]:.6g}" for k in self.COLUMNS[2:]]
        self.fh.write(",".join(map(str, values)) + "\n")
        self.fh.flush()

    def close(self, engine: Any = None) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    def _close_and_raise(self, engine: Any, err: BaseException) -> None:
        self.close()
        raise err


class _Checkpointer:
    """Save :meth:`GANTrainer.training_state` every ``every`` iterations and at the last one."""

    def __init__(self, manager: CheckpointManager, every: int) -> None:
        self.manager, self.every = manager, every

    def attach(self, engine: GANTrainer) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: GANTrainer) -> None:
        it = engine.state.iteration
        if it % self.every == 0 or it >= engine.iterations:
            self.manager.save(engine.training_state(), it)


class _SampleGrid:
    """Every ``every`` iterations, a grid of the sampled (EMA) generator from fixed noise (and labels)."""

    def __init__(
        self,
        folder: Path,
        every: int,
        z: torch.Tensor,
        labels: torch.Tensor | None,
        labels_pool: torch.Tensor | None,
        standing_batches: int,
        seed: int,
    ) -> None:
        self.folder, self.every, self.z, self.labels = folder, every, z, labels
        self.labels_pool, self.standing_batches, self.seed = labels_pool, standing_batches, seed
        folder.mkdir(parents=True, exist_ok=True)

    def attach(self, engine: GANTrainer) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: GANTrainer) -> None:
        it = engine.state.iteration
        if it % self.every == 0 or it >= engine.iterations:
            self.save(engine, it)

    @torch.no_grad()
    def save(self, engine: GANTrainer, it: int) -> Path:
        from torchvision.utils import save_image

        g = standing_batchnorm_stats(
            copy.deepcopy(engine.generator_ema), self.labels_pool, self.standing_batches, seed=self.seed
        )
        device = engine.state.device
        labels = None if self.labels is None else self.labels.to(device)
        images = to_unit_range(g(self.z.to(device), labels)).cpu()
        path = self.folder / f"iter_{it:08d}.png"
        with atomic_path(path) as tmp:
            save_image(images, tmp, nrow=int(math.ceil(math.sqrt(len(images)))), padding=1)
        return path


class _Progress:
    """A tqdm bar over all iterations, showing the latest losses."""

    def __init__(self, total: int, initial: int) -> None:
        self.total, self.initial, self.bar = total, initial, None

    def attach(self, engine: GANTrainer) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.close)
        engine.add_event_handler(Events.TERMINATE, self.close)

    def __call__(self, engine: GANTrainer) -> None:
        from tqdm.auto import tqdm

        if self.bar is None:
            tty = sys.stderr.isatty()
            self.bar = tqdm(
                total=self.total,
                initial=self.initial,
                desc="GAN",
                unit="it",
                mininterval=0.5 if tty else 30.0,
                dynamic_ncols=True,
            )
        out = engine.state.output
        self.bar.set_postfix(
            epoch=engine.state.epoch,
            loss_d=f"{out['loss_d']:.3f}",
            loss_g=f"{out['loss_g']:.3f}",
            refresh=False,
        )
        self.bar.update(1)

    def close(self, engine: Any = None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ----------------------------------------------------------------------------- assembling a run


@dataclass
class _Subset:
    images: torch.Tensor  # (n, C, H, W) in [-1, 1]
    targets: torch.Tensor  # (n, L') float label vectors
    labels: np.ndarray  # (n, L) as stored in the file
    indices: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def _load_subset(config: GANConfig) -> _Subset:
    from medgan_aug.data import MedMNISTDataset, file_md5, low_data_indices

    ds = MedMNISTDataset(
        flag=config.flag,
        split="train",
        size=config.size,
        root=config.root,
        path=config.path,
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
    return _Subset(images, torch.from_numpy(ds.targets[idx].copy()), ds.labels[idx], idx, info)


def _device(name: str) -> torch.device:
    """The torch device for a ``device`` option (``cpu``, ``cuda[:N]`` or ``auto``) of one process."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available")
    return device


def _seeds(seed: int) -> dict[str, int]:
    """Independent child seeds for every random stream of a run (numpy SeedSequence)."""
    names = ("init", "noise", "augment", "data", "fixed_noise", "standing")
    values = np.random.SeedSequence(seed).generate_state(len(names))
    return {n: int(v) for n, v in zip(names, values)}


def build_gan_trainer(
    config: GANConfig, subset: _Subset, handlers: Sequence | None = None, shard: Any = None
) -> GANTrainer:
    """Networks, optimisers, schedulers, augmentation and the :class:`GANTrainer` for ``config``.

    ``shard`` (a :class:`medgan_aug.distributed.Shard`, under torchrun) makes it data-parallel: synchronised
    BatchNorm, rank 0's initial weights, and this rank's slice of every batch, noise and augmentation draw.
    """
    seeds = _seeds(config.seed)
    torch.manual_seed(seeds["init"])
    np.random.seed(seeds["init"] % (2**32))
    random.seed(seeds["init"])
    device = _device(config.device) if shard is None else shard.device
    num_labels = subset.info["num_labels"] if config.conditional else 0
    channels = subset.info["num_channels"]
    G = DCGANGenerator(config.size, config.latent_dim, num_labels, config.base_channels, channels).to(device)
    D = DCGANDiscriminator(config.size, num_labels, config.base_channels, channels, config.spectral_norm).to(
        device
    )
    if shard is not None:
        from medgan_aug.distributed import ShardedBatches, ShardedDiffAugment

        G, D = shard.prepare(G), shard.prepare(D)
    g_opt = torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=(config.beta1, config.beta2))
    d_opt = torch.optim.Adam(D.parameters(), lr=config.lr_d, betas=(config.beta1, config.beta2))
    g_sched = d_sched = None
    fn = _schedule(config.lr_schedule, config.iterations)
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


def _run_record(config: GANConfig, subset: _Subset, epoch_length: int) -> dict[str, Any]:
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
    ``config.batch_size`` and only rank 0 writes the run directory (:mod:`medgan_aug.distributed`).

    Args:
        config: the run's :class:`GANConfig`.
        handlers: extra ignite/MONAI handlers (objects with ``attach(engine)``), attached after the
            run-directory handlers (e.g. ``monai.handlers.StatsHandler``).

    Raises:
        FileExistsError: ``out`` already holds a run and ``resume`` is False.
        FileNotFoundError: ``resume`` without a run or checkpoint to resume from.
        ValueError: the resumed run's configuration or subset differs.
        GANDivergenceError: a loss became NaN/inf (the message names the iteration).
        medgan_aug.checkpoint.CheckpointError: no readable checkpoint, or an unsafe one.
    """
    if not isinstance(config, GANConfig):
        raise TypeError(f"config must be a GANConfig, got {type(config).__name__}")
    previous_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    from medgan_aug.distributed import distributed_context

    try:
        with distributed_context(config.device) as shard:  # None unless started by torchrun with >1 process
            return _train_gan(config, handlers, shard)
    finally:
        torch.set_num_threads(previous_threads)


def _train_gan(config: GANConfig, handlers: Sequence | None, shard: Any = None) -> Path:
    from medgan_aug.distributed import run_on_main

    run_dir = Path(config.out)
    manager = CheckpointManager(run_dir / "checkpoints", config.n_saved)
    main = shard is None or shard.is_main  # only the main process writes the run directory
    subset = _load_subset(config)
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

    seeds = _seeds(config.seed)
    fixed = torch.Generator().manual_seed(seeds["fixed_noise"])
    z = torch.randn(config.n_samples, config.latent_dim, generator=fixed)
    pool = subset.targets if config.conditional else None
    fixed_labels = None
    if pool is not None:
        fixed_labels = pool[torch.arange(config.n_samples) % len(pool)]
    own = []
    if main:
        own += [
            _LossCSV(run_dir / "losses.csv", start),
            _Checkpointer(manager, config.checkpoint_every),
            _SampleGrid(
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
        own.append(_Progress(config.iterations, start or 0))
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
