"""Diffusion-generator training as a MONAI ``Trainer``, with the GAN trainer's handlers and exact resume.

What one iteration does (:meth:`DiffusionTrainer._iteration`), for a real batch ``x`` (in [-1, 1]) with
labels ``y``: pad ``x`` to the UNet's size, draw a timestep ``t`` uniformly from the training schedule and
Gaussian noise ``eps``, drop the labels of a ``label_dropout`` share of the batch to the null context
(classifier-free guidance; Ho & Salimans 2022) and every image a batch marks unlabelled (a ``"labelled"`` bool
entry, :class:`~medgan_aug.data.pools.PoolBatches`), and take one Adam step on the DDPM noise-prediction loss
``|| eps - eps_theta(sqrt(abar_t) x + sqrt(1 - abar_t) eps, t, y) ||^2`` (Ho et al., NeurIPS 2020,
the "simple" loss). MONAI's ``DiffusionInferer`` adds the noise (its ``DDPMScheduler``) and calls the UNet;
then the weight EMA (:class:`~medgan_aug.handlers.WeightEMA` on ``IterationEvents.MODEL_COMPLETED``, as in the
GAN) and the optional learning-rate schedule step.

Everything random (timesteps, noise, label dropout) comes from one ``torch.Generator`` seeded by the run
(``noise_seed``) and saved in every checkpoint with the global RNG states, so, as for the GAN, a run stopped
at any checkpoint and resumed ends bit-identical to an uninterrupted run on CPU (tested). The batches are
:class:`~medgan_aug.data.batches.SeededBatches` (a pure function of the iteration).

The engine has the attributes the run-folder handlers read from :class:`~medgan_aug.engines.GANTrainer`
(``generator``, ``generator_ema``, ``iterations``, :meth:`training_state`, :meth:`training_seconds`,
``progress_label``/``progress_keys``, ``loss_columns``), so ``PeriodicCheckpoint``, ``SampleGrid``,
``LossCSV`` and ``IterationProgress`` attach unchanged. A non-finite loss raises
:class:`~medgan_aug.utils.errors.TrainingDivergenceError` before the optimiser step of that iteration.

Speed: ``precision="bf16"`` runs the UNet's forward under bfloat16 autocast (loss, weights, optimiser and
EMA stay float32); ``channels_last`` gives the padded batch channels-last strides (for a UNet converted to
it by the caller). Sampling (:meth:`DiffusionGenerator.forward`) is always float32.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from ignite.engine import Events
from monai.engines import Trainer
from monai.engines.utils import IterationEvents
from monai.inferers import DiffusionInferer
from torch.nn import functional as F

from medgan_aug.data.batches import SeededBatches
from medgan_aug.handlers.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
from medgan_aug.handlers.ema import WeightEMA
from medgan_aug.handlers.finite_loss import check_finite_loss
from medgan_aug.networks.diffusion import DiffusionGenerator
from medgan_aug.utils.errors import TrainingDivergenceError
from medgan_aug.utils.serialization import get_rng_states, set_rng_states
from medgan_aug.utils.validation import is_real

__all__ = ["DiffusionTrainer", "DIFFUSION_LOSS_COLUMNS"]


#: The columns of a diffusion run's ``losses.csv``.
DIFFUSION_LOSS_COLUMNS = ("iteration", "epoch", "loss", "lr")


class DiffusionTrainer(Trainer):
    """DDPM training of a :class:`DiffusionGenerator` as a MONAI ``Trainer`` (see the module docstring).

    Args:
        device: torch device.
        generator: the :class:`DiffusionGenerator` (its UNet and label context are trained).
        optimizer: its optimiser.
        batches: a :class:`SeededBatches` of images in [-1, 1] at the generator's ``image_size`` (bound here);
            batches with a ``"labelled"`` (B,) bool entry train their unlabelled rows with the null context.
        iterations: total number of iterations; the engine stops there.
        label_dropout: share of each batch trained with the null context (classifier-free guidance; 0 for
            an unconditional generator).
        ema_decay: EMA decay of the weights (0: ``generator_ema`` mirrors the live model).
        scheduler: optional per-iteration learning-rate scheduler.
        noise_seed: seed of the generator of timesteps, noise and label dropout.
        train_handlers: MONAI/ignite handlers (objects with ``attach``), attached at construction.
        precision: ``"fp32"`` or ``"bf16"`` (bfloat16 autocast of the UNet's forward).
        channels_last: give the padded batches channels-last strides.

    Output per iteration (``engine.state.output``): ``loss`` (the MSE), ``lr``.
    """

    progress_label = "DDPM"
    progress_keys = ("loss",)
    loss_columns = DIFFUSION_LOSS_COLUMNS

    def __init__(
        self,
        device: str | torch.device,
        generator: DiffusionGenerator,
        optimizer: torch.optim.Optimizer,
        batches: SeededBatches,
        iterations: int,
        label_dropout: float = 0.1,
        ema_decay: float = 0.999,
        scheduler: Any = None,
        noise_seed: int = 0,
        train_handlers: Sequence | None = None,
        precision: str = "fp32",
        channels_last: bool = False,
    ) -> None:
        if not isinstance(generator, DiffusionGenerator):
            raise TypeError(f"generator must be a DiffusionGenerator, got {type(generator).__name__}")
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16' (resolve 'auto' first), got {precision!r}")
        if not is_real(label_dropout) or not 0 <= label_dropout < 1:
            raise ValueError(f"label_dropout must be in [0, 1), got {label_dropout!r}")
        if (batches.labels is not None) != (generator.num_labels > 0):
            raise ValueError(
                f"the batches {'carry' if batches.labels is not None else 'lack'} labels but the generator has "
                f"num_labels={generator.num_labels}"
            )
        super().__init__(
            device=device,
            max_epochs=math.ceil(iterations / batches.epoch_length),
            data_loader=batches,
            epoch_length=batches.epoch_length,
            handlers=train_handlers,
            decollate=False,
        )
        self.generator = generator
        self.ema = WeightEMA(generator, ema_decay)
        self.ema.attach(self)
        self.generator_ema = self.ema.ema_model
        self.optimizer, self.scheduler = optimizer, scheduler
        self.batches = batches
        batches.bind(self)
        self.iterations = int(iterations)
        self.conditional = generator.num_labels > 0
        self.label_dropout = float(label_dropout) if self.conditional else 0.0
        self.ema_decay = float(ema_decay)
        self.inferer = DiffusionInferer(generator.train_scheduler())
        self.num_train_timesteps = generator.num_train_timesteps
        self.noise_rng = torch.Generator().manual_seed(int(noise_seed))
        self.precision, self.channels_last = precision, bool(channels_last)
        self.device_type = torch.device(device).type
        self.prior_seconds, self.session_started = 0.0, time.perf_counter()
        self.add_event_handler(Events.ITERATION_COMPLETED, DiffusionTrainer._stop_when_done)

    # -- loop ---------------------------------------------------------------------------------------
    def _stop_when_done(self) -> None:
        if self.state.iteration >= self.iterations:
            self.terminate()

    def _draws(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Noise like ``x``, timesteps ``(B,)`` and the label-dropout mask ``(B,)``, from ``noise_rng``."""
        b = x.shape[0]
        noise = torch.randn(x.shape, generator=self.noise_rng)
        timesteps = torch.randint(0, self.num_train_timesteps, (b,), generator=self.noise_rng)
        drop = torch.rand(b, generator=self.noise_rng) < self.label_dropout
        device = self.state.device
        return noise.to(device), timesteps.to(device), drop.to(device)

    def _iteration(self, engine: DiffusionTrainer, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:
        G = self.generator
        x = G.pad_images(batchdata["image"].to(self.state.device))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = batchdata["label"].to(self.state.device) if self.conditional else None
        noise, timesteps, drop = self._draws(x)
        if self.conditional and "labelled" in batchdata:  # unlabelled pool images: the null context
            drop = drop | ~batchdata["labelled"].to(self.state.device)
        if self.channels_last:
            noise = noise.contiguous(memory_format=torch.channels_last)
        G.train()
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            context = G.conditioning(y, drop) if self.conditional else None
            prediction = self.inferer(
                inputs=x, diffusion_model=G.unet, noise=noise, timesteps=timesteps, condition=context
            )
        loss = F.mse_loss(prediction.float(), noise)
        value = check_finite_loss(
            loss.item(),
            "loss",
            self.state.iteration,
            label="diffusion training",
            step_name="iteration",
            advice="Training stopped; the last good checkpoint is kept. Try a lower learning rate (--lr-g).",
            error=TrainingDivergenceError,
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        engine.fire_event(IterationEvents.MODEL_COMPLETED)  # the EMA
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            self.scheduler.step()
        return {"loss": value, "lr": lr}

    def training_seconds(self) -> float:
        """Wall seconds spent on this run so far: earlier sessions (up to their last checkpoint) plus this one."""
        return self.prior_seconds + time.perf_counter() - self.session_started

    # -- state --------------------------------------------------------------------------------------
    def checkpoint_objects(self) -> dict[str, Any]:
        """``save_dict`` / ``load_dict`` for MONAI's ``CheckpointSaver`` / ``CheckpointLoader``."""
        objects: dict[str, Any] = {
            "generator": self.generator,
            "generator_ema": self.generator_ema,
            "optimizer": self.optimizer,
            "trainer": self,
        }
        if self.scheduler is not None:
            objects["scheduler"] = self.scheduler
        return objects

    def training_state(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically, as weights-only-safe data."""
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "model": "ddpm",
            "iteration": int(self.state.iteration),
            "epoch": int(self.state.epoch),
            "generator": self.generator.state_dict(),
            "generator_ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "noise_rng": self.noise_rng.get_state(),
            "rng": get_rng_states(),
            "training_seconds": self.training_seconds(),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`training_state` output and position the engine at its iteration."""
        if state.get("model") != "ddpm":
            raise ValueError(
                "the checkpoint is not one of a diffusion run (--model ddpm): it cannot continue this run"
            )
        self.generator.load_state_dict(state["generator"])
        self.ema.load_state_dict(state["generator_ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        if (self.scheduler is None) != (state.get("scheduler") is None):
            raise ValueError("checkpoint scheduler does not match the configured learning-rate schedule")
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.noise_rng.set_state(state["noise_rng"].cpu())
        set_rng_states(state["rng"])
        self.prior_seconds = float(state.get("training_seconds", 0.0))
        iteration = int(state["iteration"])
        self.state.iteration = iteration
        self.state.epoch = iteration // self.state.epoch_length

    def run(self) -> None:  # type: ignore[override]
        """Train until ``iterations`` (continuing from ``state.iteration`` after a resume)."""
        if self.state.iteration >= self.iterations:
            return
        super().run()
