"""GAN training on a low-data MedMNIST subset: a MONAI ``Trainer`` (ignite ``Engine``) with exact resume.

Python API: ``run_dir = train_gan(GANConfig(path="nih1000_chestmnist.npz", conditional=True, ...))``;
the ``medgan-aug train`` command is a thin layer over it.

What one iteration does (:meth:`GANTrainer._iteration`), for a real batch ``x`` with labels ``y``:

1. ``d_steps`` times: fakes ``G(z, y)`` from fresh noise, ``D`` sees ``DiffAugment(x)`` and
   ``DiffAugment(fake)`` (Zhao et al., NeurIPS 2020), loss non-saturating BCE (Goodfellow et al. 2014,
   the DCGAN loss) or hinge (Lim & Ye 2017; Miyato et al. 2018), plus optionally the R1 penalty
   ``gamma/2 E||grad_x D(x)||^2`` on reals (Mescheder, Geiger & Nowozin, ICML 2018), optionally LeCam
   regularisation (Tseng et al., CVPR 2021), balanced consistency regularisation (bCR, Zhao et al., AAAI
   2021) and AC-GAN's auxiliary classification loss on reals (Odena et al., ICML 2017); one Adam step.
   The terms are the functions of :mod:`medgan_aug.engines.gan_losses`. With adaptive augmentation
   (:class:`~medgan_aug.transforms.AdaptiveAugment`, Karras et al., NeurIPS 2020) the augmentation
   probability then follows D's logits on the real images.
2. One G step on fresh noise through the same augmentation (plus the auxiliary loss on its fakes).
3. EMA of G's weights (Yazici et al., "The Unusual Effectiveness of Averaging in GAN Training",
   ICLR 2019) with the warm-up ``min(decay, (1 + t) / (10 + t))`` of TensorFlow's
   ``ExponentialMovingAverage(num_updates=t)``, so early averages are not dominated by the random
   initialisation; G's BatchNorm buffers are copied. This is the :class:`~medgan_aug.handlers.WeightEMA`
   handler, which the trainer attaches to MONAI's ``IterationEvents.MODEL_COMPLETED`` (fired after the G
   step, before any ``ITERATION_COMPLETED`` handler such as a checkpoint).
   The EMA copy is what gets sampled and exported; before sampling/export its BatchNorm statistics are
   re-estimated from ``standing_stats_batches`` batches of noise ("standing statistics", Brock et al.,
   BigGAN, ICLR 2019), so eval-mode samples match the averaged weights.
4. Optional per-iteration learning-rate schedule (linear or cosine decay to 0).

Semi-supervised conditional training (``labelled``: a flag per training image; issue 21): every real
image enters D's adversarial loss, unlabelled ones without their projection term, and AC-GAN's auxiliary
loss on reals averages over the labelled ones only (Odena, Olah & Shlens 2017; Salimans et al. 2016); fakes
are conditioned on labels of labelled rows. :mod:`medgan_aug.engines.semi_supervised` has the details.

Speed (``precision``, ``channels_last``; measured in ``benchmarks/bench_gan_speed.py``): with
``precision="bf16"`` every forward pass of G and D runs under ``torch.autocast(dtype=torch.bfloat16)``
(Kalamkar et al., "A Study of BFLOAT16 for Deep Learning Training", 2019): convolutions and linear layers
compute in bfloat16, while the weights, their gradients, the optimisers, the EMA and every loss term stay
float32 (network outputs are cast back to float32 before the losses and the augmentation). With
``channels_last`` the real batch is given channels-last strides to match the networks (the caller converts
the networks), which lets oneDNN skip layout reorders around each convolution. Both are deterministic on
CPU, so exact resume holds within a setting.

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
DiffAugment generators, the global torch/numpy/python RNG states and the training seconds so far
(:meth:`GANTrainer.training_seconds`); so on CPU a run stopped at any checkpoint and resumed ends
bit-identical to an uninterrupted run (tested). Checkpoints are written atomically and read with
``torch.load(weights_only=True)`` (:mod:`medgan_aug.utils.serialization`).

Divergence: a non-finite loss raises :class:`GANDivergenceError` naming the iteration, before any
optimiser step of that iteration (:func:`medgan_aug.handlers.check_finite_loss`, the check the classifier
trainer uses too); no checkpoint is written after it, so the last good one stays.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ignite.engine import Events
from monai.engines import Trainer
from monai.engines.utils import IterationEvents
from monai.utils import GanKeys
from torch import nn

from medgan_aug.data.batches import SeededBatches
from medgan_aug.engines.gan_losses import (
    LOSSES,
    GANObjective,
    LeCamAnchors,
    auxiliary_classification_loss,
    consistency_penalty,
    discriminator_loss,
    generator_loss,
    lecam_penalty,
)
from medgan_aug.engines.semi_supervised import labelled_rows
from medgan_aug.handlers.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
from medgan_aug.handlers.ema import WeightEMA
from medgan_aug.handlers.finite_loss import check_finite_loss
from medgan_aug.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from medgan_aug.transforms.adaptive import AdaptiveAugment
from medgan_aug.transforms.diffaugment import DiffAugment
from medgan_aug.utils.choices import LR_SCHEDULES
from medgan_aug.utils.errors import GANDivergenceError
from medgan_aug.utils.serialization import get_rng_states, set_rng_states

__all__ = ["LOSSES", "LR_SCHEDULES", "GANTrainer", "run_seeds"]


def lr_lambda(kind: str, total: int):
    if kind == "linear":
        return lambda step: max(0.0, 1.0 - step / total)
    if kind == "cosine":
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    return None


class GANTrainer(Trainer):
    """DCGAN training as a MONAI ``Trainer`` (see the module docstring for the step and the design).

    Args:
        device: torch device.
        generator, discriminator: the networks (conditional iff ``generator.num_labels > 0``).
        g_optimizer, d_optimizer: their optimisers.
        batches: a :class:`SeededBatches` (bound to this engine here).
        iterations: total number of iterations; the engine stops there.
        objective: a :class:`~medgan_aug.engines.gan_losses.GANObjective`: the loss (``"bce"`` or
            ``"hinge"``), D steps per iteration and the regulariser weights (R1, LeCam, bCR, AC-GAN; 0 is
            off). None: plain DCGAN. bCR needs ``augment``; AC-GAN a discriminator built with
            ``auxiliary_classifier=True``.
        ema_decay: EMA decay of G's weights (0: no EMA; ``generator_ema`` then mirrors G).
        augment: a :class:`DiffAugment` or :class:`AdaptiveAugment` applied to real and fake D inputs, or None.
        g_scheduler, d_scheduler: optional per-iteration LR schedulers.
        noise_seed: seed of the latent-noise generator.
        train_handlers: MONAI/ignite handlers (objects with ``attach``), attached at construction.
        shard: a :class:`medgan_aug.engines.Shard` under ``torchrun`` (None: one process). Then the
            noise is drawn for the global batch and sliced, gradients are averaged over the ranks after
            each backward, and reported losses are means over the ranks.
        precision: ``"fp32"`` or ``"bf16"`` (bfloat16 autocast of the forward passes; see the module
            docstring).
        channels_last: give real batches channels-last strides (for networks converted to it).
        labelled: a 1-D bool tensor, one flag per training image of ``batches`` (same order, any device):
            False marks an unlabelled image, whose label row is ignored (semi-supervised training, see the
            module docstring). None (or all True): every image labelled, today's training bit for bit. An
            unconditional trainer accepts and ignores it; a conditional one needs a labelled image.

    Output per iteration (``engine.state.output``): ``loss_d``, ``loss_g``, ``d_real``, ``d_fake`` (mean
    logits of the last D step), ``r1``, ``lecam``, ``bcr``, ``aux_d``, ``aux_g`` (0 where off), ``ada_p``
    (the augmentation probability; 1 for a fixed DiffAugment, 0 without one), ``lr_g``, ``lr_d`` and
    ``GanKeys.DLOSS`` / ``GanKeys.GLOSS``.

    Attributes:
        ema: the :class:`~medgan_aug.handlers.WeightEMA` handler of G; ``generator_ema`` is its average.
        prior_seconds: training seconds of earlier sessions (restored from a checkpoint).
        session_started: ``time.perf_counter()`` when this session started (construction; callers that
            did work for the run before, such as loading its data, may set it earlier).
        progress_label, progress_keys: what :class:`~medgan_aug.handlers.IterationProgress` shows.
        labelled: the flags on the CPU; None when every image is labelled or G is unconditional.
        conditioning_labels: the labelled rows of ``batches``' labels, which G is conditioned on (what
            sample grids and standing statistics should draw from); None when unconditional.
    """

    progress_label = "GAN"
    progress_keys = ("loss_d", "loss_g")

    def __init__(
        self,
        device: str | torch.device,
        generator: DCGANGenerator,
        discriminator: DCGANDiscriminator,
        g_optimizer: torch.optim.Optimizer,
        d_optimizer: torch.optim.Optimizer,
        batches: SeededBatches,
        iterations: int,
        objective: GANObjective | None = None,
        ema_decay: float = 0.999,
        augment: DiffAugment | AdaptiveAugment | None = None,
        g_scheduler: Any = None,
        d_scheduler: Any = None,
        noise_seed: int = 0,
        train_handlers: Sequence | None = None,
        shard: Any = None,
        precision: str = "fp32",
        channels_last: bool = False,
        labelled: torch.Tensor | None = None,
    ) -> None:
        objective = GANObjective() if objective is None else objective
        if not isinstance(objective, GANObjective):
            raise TypeError(f"objective must be a GANObjective or None, got {type(objective).__name__}")
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16' (resolve 'auto' first), got {precision!r}")
        if objective.bcr_weight > 0 and augment is None:
            raise ValueError("bcr_weight > 0 needs an augmentation (bCR compares D on two augmented views)")
        if objective.aux_weight > 0 and not getattr(discriminator, "auxiliary_classifier", False):
            raise ValueError("aux_weight > 0 needs a discriminator built with auxiliary_classifier=True")
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
        self.ema = WeightEMA(generator, ema_decay)  # updated on MODEL_COMPLETED, after the G step
        self.ema.attach(self)
        self.generator_ema = self.ema.ema_model
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.g_scheduler, self.d_scheduler = g_scheduler, d_scheduler
        self.batches = batches
        batches.bind(self)
        self.iterations = int(iterations)
        self.objective, self.ema_decay, self.augment = objective, float(ema_decay), augment
        self.loss, self.d_steps, self.r1_gamma = objective.loss, objective.d_steps, objective.r1_gamma
        self.lecam_weight, self.bcr_weight = objective.lecam_weight, objective.bcr_weight
        self.aux_weight = objective.aux_weight
        self.lecam = LeCamAnchors(objective.lecam_decay) if self.lecam_weight > 0 else None
        self.noise_rng = torch.Generator().manual_seed(int(noise_seed))
        self.conditional = generator.num_labels > 0
        self.shard = shard
        self.precision, self.channels_last = precision, bool(channels_last)
        self.semi = labelled_rows(labelled, batches, self.conditional, shard)  # None: every row labelled
        self.labelled = None if self.semi is None else self.semi.flags
        self.conditioning_labels = batches.labels if self.semi is None else self.semi.conditioning_labels
        self.conditioning_labels = self.conditioning_labels if self.conditional else None
        self.device_type = torch.device(device).type
        self.prior_seconds, self.session_started = 0.0, time.perf_counter()
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

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def _generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """``G(z, y)`` in float32 (computed under autocast when ``precision`` is bf16)."""
        with self._autocast():
            return self.generator(z, y).float()

    def _discriminate(
        self, x: torch.Tensor, y: torch.Tensor | None, rows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``D.forward_with_aux(x, y[, rows])`` in float32 (under autocast when ``precision`` is bf16)."""
        with self._autocast():
            logits, aux = self.discriminator.forward_with_aux(*((x, y) if rows is None else (x, y, rows)))
        return logits.float(), (None if aux is None else aux.float())

    def _check_finite(self, name: str, value: float, **context: float) -> float:
        """Return ``value`` (a Python float: one sync, no extra tensor ops) or raise on NaN/inf."""
        return check_finite_loss(
            value,
            name,
            self.state.iteration,
            label="GAN training",
            step_name="iteration",
            context=context,
            advice="Training stopped; the last good checkpoint is kept. Try a lower learning rate, "
            "--loss hinge, --spectral-norm or --r1-gamma.",
            error=GANDivergenceError,
        )

    def _iteration(self, engine: GANTrainer, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:
        G, D = self.generator, self.discriminator
        real = batchdata["image"].to(self.state.device)
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        y = batchdata["label"].to(self.state.device) if self.conditional else None
        b = real.shape[0]
        rows = None  # this batch's labelled flags (None: all labelled) and the fakes' labels
        if self.semi is not None:  # ignite fetched this batch before counting the iteration
            rows = self.semi.rows(engine.state.iteration - 1, b, self.state.device)
        y_fake = y if rows is None else self.semi.fake_labels(y, rows, self.noise_rng)
        G.train()
        D.train()

        # 1. discriminator
        D.requires_grad_(True)
        terms = {"r1": 0.0, "lecam": 0.0, "bcr": 0.0, "aux_d": 0.0, "aux_g": 0.0}
        for _ in range(self.d_steps):
            with torch.no_grad():
                fake = self._generate(self._noise(b), y_fake)
            real_in = real.detach().requires_grad_(self.r1_gamma > 0)
            d_real, aux_real = self._discriminate(self._aug(real_in), y, rows)
            d_fake = self._discriminate(self._aug(fake), y_fake, rows)[0]  # fake i mirrors real i
            loss_d = discriminator_loss(self.loss, d_real, d_fake)
            if self.aux_weight > 0:
                if rows is None:
                    aux = auxiliary_classification_loss(aux_real, y)
                else:  # the labelled real rows only
                    aux = self.semi.real_aux_loss(aux_real, y, rows)
                loss_d = loss_d + self.aux_weight * aux
                terms["aux_d"] = self._mean(aux)
            if self.lecam is not None:
                self.lecam.update(self._mean(d_real.detach().mean()), self._mean(d_fake.detach().mean()))
                lecam = lecam_penalty(d_real, d_fake, self.lecam.real, self.lecam.fake)
                loss_d = loss_d + self.lecam_weight * lecam
                terms["lecam"] = self._mean(lecam)
            if self.bcr_weight > 0:
                bcr = consistency_penalty(
                    d_real, self._discriminate(self._aug(real_in), y, rows)[0]
                ) + consistency_penalty(d_fake, self._discriminate(self._aug(fake), y_fake, rows)[0])
                loss_d = loss_d + self.bcr_weight * bcr
                terms["bcr"] = self._mean(bcr)
            if self.r1_gamma > 0:
                (grad,) = torch.autograd.grad(d_real.sum(), real_in, create_graph=True)
                r1 = grad.pow(2).flatten(1).sum(1).mean()
                loss_d = loss_d + 0.5 * self.r1_gamma * r1
                terms["r1"] = self._mean(r1)
            ld = self._check_finite("loss_d", self._mean(loss_d))
            self.d_optimizer.zero_grad(set_to_none=True)
            loss_d.backward()
            self._average_gradients(D)
            self.d_optimizer.step()
            if isinstance(self.augment, AdaptiveAugment):
                self.augment.observe(d_real)

        # 2. generator
        D.requires_grad_(False)
        fake = self._generate(self._noise(b), y_fake)
        g_logits, aux_fake = self._discriminate(self._aug(fake), y_fake, rows)
        loss_g = generator_loss(self.loss, g_logits)
        if self.aux_weight > 0:
            aux = auxiliary_classification_loss(aux_fake, y_fake)  # every fake, with its requested labels
            loss_g = loss_g + self.aux_weight * aux
            terms["aux_g"] = self._mean(aux)
        lg = self._check_finite("loss_g", self._mean(loss_g), loss_d=ld)
        self.g_optimizer.zero_grad(set_to_none=True)
        loss_g.backward()
        self._average_gradients(G)
        self.g_optimizer.step()
        D.requires_grad_(True)

        # 3. EMA (the WeightEMA handler), 4. schedules
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        lr_g, lr_d = self.g_optimizer.param_groups[0]["lr"], self.d_optimizer.param_groups[0]["lr"]
        for scheduler in (self.g_scheduler, self.d_scheduler):
            if scheduler is not None:
                scheduler.step()
        return {
            "loss_d": ld,
            "loss_g": lg,
            "d_real": self._mean(d_real.detach().mean()),
            "d_fake": self._mean(d_fake.detach().mean()),
            **terms,
            "ada_p": self.augment_probability,
            "lr_g": lr_g,
            "lr_d": lr_d,
            GanKeys.DLOSS: ld,
            GanKeys.GLOSS: lg,
        }

    @property
    def augment_probability(self) -> float:
        """The share of D inputs augmented: ADA's ``p``, 1 for a fixed DiffAugment, 0 without one."""
        if isinstance(self.augment, AdaptiveAugment):
            return self.augment.p
        return 0.0 if self.augment is None else 1.0

    def training_seconds(self) -> float:
        """Wall seconds spent on this run so far: earlier sessions (up to their last checkpoint) plus this one."""
        return self.prior_seconds + time.perf_counter() - self.session_started

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
            "generator_ema": self.ema.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
            "g_scheduler": sched(self.g_scheduler),
            "d_scheduler": sched(self.d_scheduler),
            "noise_rng": self.noise_rng.get_state(),
            "augment": None if self.augment is None else self.augment.state_dict(),
            "lecam": None if self.lecam is None else self.lecam.state_dict(),
            "rng": get_rng_states(),
            "training_seconds": self.training_seconds(),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`training_state` output and position the engine at its iteration."""
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.ema.load_state_dict(state["generator_ema"])
        self.g_optimizer.load_state_dict(state["g_optimizer"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])
        for scheduler, key in ((self.g_scheduler, "g_scheduler"), (self.d_scheduler, "d_scheduler")):
            if (scheduler is None) != (state.get(key) is None):
                raise ValueError(f"checkpoint {key} does not match the configured learning-rate schedule")
            if scheduler is not None:
                scheduler.load_state_dict(state[key])
        self.noise_rng.set_state(
            state["noise_rng"].cpu()
        )  # a CPU generator; the checkpoint may be on the GPU
        if (self.augment is None) != (state.get("augment") is None):
            raise ValueError("checkpoint DiffAugment state does not match the configured policy")
        if self.augment is not None:
            self.augment.load_state_dict(state["augment"])
        if (self.lecam is None) != (state.get("lecam") is None):
            raise ValueError("checkpoint LeCam state does not match the configured lecam_weight")
        if self.lecam is not None:
            self.lecam.load_state_dict(state["lecam"])
        set_rng_states(state["rng"])
        self.prior_seconds = float(state.get("training_seconds", 0.0))  # older checkpoints: 0
        iteration = int(state["iteration"])
        self.state.iteration = iteration
        self.state.epoch = iteration // self.state.epoch_length

    def run(self) -> None:  # type: ignore[override]
        """Train until ``iterations`` (continuing from ``state.iteration`` after a resume)."""
        if self.state.iteration >= self.iterations:
            return
        super().run()


def run_seeds(seed: int) -> dict[str, int]:
    """Independent child seeds for every random stream of a run (numpy SeedSequence)."""
    names = (
        "init",
        "noise",
        "augment",
        "data",
        "fixed_noise",
        "standing",
        "ada",
    )  # append only: keeps old seeds
    values = np.random.SeedSequence(seed).generate_state(len(names))
    return {n: int(v) for n, v in zip(names, values)}
