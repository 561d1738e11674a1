"""The settings of a GAN run: :class:`GANConfig`, one field per ``medgan-aug train`` option.

Each field carries its help text (:func:`medgan_aug.utils.settings.setting`): it documents the field here and
is the option's line in ``medgan-aug train --help`` (:mod:`medgan_aug.cli.options`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

from medgan_aug.apps.data_settings import subset_data_setting
from medgan_aug.utils.choices import LOSSES, LR_SCHEDULES, PRECISIONS
from medgan_aug.utils.settings import setting
from medgan_aug.utils.validation import check_integer, is_real

__all__ = ["GANConfig", "MODELS", "DIFFUSION_SETTINGS", "OMITTED_AT_DEFAULT"]


#: The generator families of ``GANConfig.model``.
MODELS = ("dcgan", "ddpm")

#: The settings that only a diffusion run (``model="ddpm"``) has. A DCGAN run keeps them at their defaults
#: and leaves them, and ``model``, out of :meth:`GANConfig.to_dict` (its ``config.json``), so DCGAN run
#: records and resume checks are those of runs written before the diffusion generator existed.
DIFFUSION_SETTINGS = ("model", "sampling_steps", "guidance_scale", "label_dropout")

#: Settings left out of :meth:`GANConfig.to_dict` (a run's ``config.json``) at their default, so the record
#: and resume checks of a run that does not use them are those of runs written before they existed.
OMITTED_AT_DEFAULT = ("pool",)


@dataclass
class GANConfig:
    """Everything a GAN run depends on (:func:`medgan_aug.apps.train_gan`); mirrors ``medgan-aug train``.

    Each field's ``help`` metadata says what it does (also ``medgan-aug train --help``). ``path=None`` and
    ``sample=None`` use the official MedMNIST file of ``flag`` under ``root``. The Adam defaults are DCGAN's
    (Radford et al., 2016: lr 2e-4, betas (0.5, 0.999)); ``ema_decay``, ``diffaugment`` and ``r1_gamma`` of 0
    or ``""`` turn those parts off.

    The recipe defaults (width 32, adaptive augmentation with target 0.6 over the DiffAugment policy, AC-GAN's
    auxiliary loss with weight 1 on conditional runs) won the fixed-budget ablation in
    ``experiments/results/recipe_ablation/`` (README "Choosing the GAN recipe").
    """

    path: str | None = subset_data_setting("path")
    sample: str | None = subset_data_setting("sample")
    flag: str = subset_data_setting("flag", "chestmnist")
    root: str | None = subset_data_setting("root")
    download: bool = subset_data_setting("download", False)
    size: int = subset_data_setting("size", 28)
    fraction: float = subset_data_setting("fraction", 1.0)
    subset_seed: int = subset_data_setting("subset_seed", 0)
    pool: str = setting(
        "labelled",
        "images the generator trains on: labelled (the labelled subset only), train (every train-split image "
        "of the data file; labels only on the labelled subset) or PATH (the labelled subset plus an .npz of "
        "unlabelled X-rays: 'images' (N, H, W) uint8, or a MedMNIST file's train_images; its labels are "
        "ignored). Val and test images never enter a pool",
        group="data",
    )
    conditional: bool = setting(False, "condition G and D on the label vector", group="model")
    latent_dim: int = setting(100, "length of G's noise vector z", group="model")
    base_channels: int = setting(
        32, "network width c (G's layers 8c/4c/2c/c, D's c/2c/4c[/8c])", group="model"
    )
    spectral_norm: bool = setting(False, "spectral normalisation in D", group="model")
    model: str = setting(
        "dcgan",
        "generator family: dcgan (G and D, Radford et al. 2016) or ddpm (MONAI's diffusion UNet with channels "
        "c/2c/2c, trained as a DDPM, Ho et al. 2020, sampled with DDIM, Song et al. 2021; latent_dim and the "
        "D, loss and augmentation settings do not apply to it, lr_g is its learning rate)",
        group="model",
        choices=MODELS,
    )
    sampling_steps: int = setting(
        50, "ddpm: DDIM steps per generated image (each one UNet pass)", group="model"
    )
    guidance_scale: float = setting(
        1.0,
        "ddpm, conditional: classifier-free guidance scale w (Ho & Salimans 2022; 0 = the plain conditional "
        "model, > 0 doubles the sampling cost)",
        group="model",
    )
    label_dropout: float = setting(
        0.1,
        "ddpm, conditional: share of training images whose labels are replaced by the null context (what "
        "guidance needs)",
        group="model",
    )
    iterations: int = setting(2000, "number of G steps", group="optimisation")
    batch_size: int = setting(
        64, "real images per D step (the global batch under torchrun)", group="optimisation"
    )
    loss: str = setting("bce", "bce = non-saturating DCGAN loss", group="optimisation", choices=LOSSES)
    lr_g: float = setting(2e-4, "Adam learning rate of G", group="optimisation")
    lr_d: float = setting(2e-4, "Adam learning rate of D", group="optimisation")
    beta1: float = setting(0.5, "Adam beta1 of G and D", group="optimisation")
    beta2: float = setting(0.999, "Adam beta2 of G and D", group="optimisation")
    lr_schedule: str = setting(
        "constant",
        "learning rates decay to 0 over the iterations",
        group="optimisation",
        choices=LR_SCHEDULES,
    )
    d_steps: int = setting(1, "D updates per G update", group="optimisation")
    ema_decay: float = setting(
        0.999, "EMA of G's weights (0 = off: the live G is exported)", group="optimisation"
    )
    diffaugment: str = setting(
        "color,translation,cutout", "DiffAugment policy ('' = off)", group="optimisation"
    )
    r1_gamma: float = setting(0.0, "R1 penalty weight (0 = off)", group="optimisation")
    lecam_weight: float = setting(
        0.0, "LeCam regularisation weight (Tseng et al. 2021; 0 = off)", group="optimisation"
    )
    bcr_weight: float = setting(
        0.0, "balanced consistency regularisation weight (Zhao et al. 2021; 0 = off)", group="optimisation"
    )
    aux_weight: float = setting(
        1.0,
        "AC-GAN auxiliary classification loss weight (Odena et al. 2017; conditional runs only; 0 = off)",
        group="optimisation",
    )
    ada_target: float = setting(
        0.6,
        "adaptive augmentation target of E[sign D(real)] (Karras et al. 2020; 0 = DiffAugment on every image)",
        group="optimisation",
    )
    ada_kimg: float = setting(
        100.0, "thousands of real images for the ADA probability to move from 0 to 1", group="optimisation"
    )
    precision: str = setting(
        "auto",
        "bf16: G's and D's forward passes under bfloat16 autocast (weights, gradients, losses, optimiser and "
        "EMA stay float32); auto: bf16 where the device computes it natively (CPUs with "
        "AVX512-BF16/AMX, CUDA GPUs with bf16), else fp32",
        group="speed",
        choices=PRECISIONS,
    )
    channels_last: bool = setting(
        True, "G and D in channels-last memory format (faster convolutions on CPU)", group="speed"
    )
    seed: int = setting(0, "seed of everything random but the subset", group="run")
    out: str = setting("runs/gan", "run directory", group="run", required=True)
    resume: bool = setting(False, "continue from the latest good checkpoint in out", group="run")
    checkpoint_every: int = setting(500, "checkpoint period in iterations", group="run")
    n_saved: int = setting(3, "checkpoints kept", group="run")
    sample_every: int = setting(500, "sample-grid period in iterations", group="run")
    n_samples: int = setting(64, "images per sample grid", group="run")
    standing_stats_batches: int = setting(
        16,
        "batches that re-estimate the exported G's BatchNorm statistics (0: keep its running stats)",
        group="run",
    )
    device: str = setting("cpu", "cpu, cuda[:N] or auto", group="run")
    threads: int | None = setting(
        None,
        "torch CPU threads (None: half this machine's CPUs, at least 1, see utils.safe_thread_count)",
        group="run",
    )
    progress: bool = setting(True, "show a progress bar", group="run")
    tensorboard: str | None = setting(
        None,
        "folder for TensorBoard event files: G and D losses, learning rates, ADA probability, sample grids "
        "(None: none; not part of the run's settings: --resume may add or change it)",
        group="run",
    )

    def __post_init__(self) -> None:
        self._check_counts()
        self._check_data()
        self._check_optimiser()
        self._check_regularisation()
        self._check_precision()
        self._check_diffaugment()
        self._check_device()
        self._check_model_settings()
        self._check_pool()
        self._normalise_paths()

    def _integer(self, name: str, minimum: int = 1) -> None:
        """``name`` must be an integer (not a bool) >= ``minimum``; stored as a Python int."""
        value = getattr(self, name)
        setattr(self, name, check_integer(f"GANConfig.{name}", value, minimum))

    def _check_counts(self) -> None:
        """Sizes, steps and intervals are integers >= 1; seeds and standing-statistics batches >= 0."""
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
            self._integer(name)
        for name in ("subset_seed", "seed", "standing_stats_batches"):
            self._integer(name, 0)

    def _check_data(self) -> None:
        """``size`` is 28 or 64 px; ``fraction`` in (0, 1], stored as a float."""
        if self.size not in (28, 64):
            raise ValueError(f"GANConfig.size must be 28 or 64, got {self.size!r}")
        if not isinstance(self.fraction, (int, float)) or not 0.0 < float(self.fraction) <= 1.0:
            raise ValueError(f"GANConfig.fraction must be in (0, 1], got {self.fraction!r}")
        self.fraction = float(self.fraction)

    def _check_optimiser(self) -> None:
        """The loss and schedule are known names; learning rates positive; Adam's betas and EMA decay in
        [0, 1)."""
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

    def _check_regularisation(self) -> None:
        """R1, LeCam, bCR and auxiliary-loss weights are finite and >= 0; ADA's target in [0, 1) and its
        speed (kimg) positive."""
        if (
            not isinstance(self.r1_gamma, (int, float))
            or not math.isfinite(self.r1_gamma)
            or self.r1_gamma < 0
        ):
            raise ValueError(f"GANConfig.r1_gamma must be a number >= 0, got {self.r1_gamma!r}")
        for name in ("lecam_weight", "bcr_weight", "aux_weight"):
            value = getattr(self, name)
            if not is_real(value) or not math.isfinite(value) or value < 0:
                raise ValueError(f"GANConfig.{name} must be a number >= 0, got {value!r}")
        if not isinstance(self.ada_target, (int, float)) or not 0.0 <= self.ada_target < 1.0:
            raise ValueError(f"GANConfig.ada_target must be in [0, 1) (0 = off), got {self.ada_target!r}")
        if (
            not isinstance(self.ada_kimg, (int, float))
            or not math.isfinite(self.ada_kimg)
            or self.ada_kimg <= 0
        ):
            raise ValueError(f"GANConfig.ada_kimg must be a positive number, got {self.ada_kimg!r}")

    def _check_precision(self) -> None:
        """``precision`` is a known name; ``channels_last`` a bool."""
        if self.precision not in PRECISIONS:
            raise ValueError(f"GANConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not isinstance(self.channels_last, bool):
            raise ValueError(f"GANConfig.channels_last must be true or false, got {self.channels_last!r}")

    def _check_diffaugment(self) -> None:
        """``diffaugment`` is a policy string of known names (Zhao et al. 2020); bCR needs it on."""
        if not isinstance(self.diffaugment, str):
            raise TypeError(
                f"GANConfig.diffaugment must be a policy string, got {type(self.diffaugment).__name__}"
            )
        from medgan_aug.transforms.diffaugment import DiffAugment  # torch: not needed for ``--help``

        DiffAugment(self.diffaugment)  # validates the policy names
        if not self.diffaugment.strip() and self.bcr_weight > 0:
            raise ValueError("GANConfig.bcr_weight compares two DiffAugment views, but diffaugment='' (off)")

    def _check_device(self) -> None:
        """``threads`` is None or >= 1; ``device`` is cpu, cuda[:N] or auto."""
        if self.threads is not None:
            self._integer("threads")
        if self.device not in ("cpu", "auto") and not str(self.device).startswith("cuda"):
            raise ValueError(f"GANConfig.device must be 'cpu', 'cuda[:N]' or 'auto', got {self.device!r}")

    def _normalise_paths(self) -> None:
        """Path-like settings as strings (``config.json`` holds plain data)."""
        if self.path is not None:
            self.path = os.fspath(self.path)
        if self.root is not None:
            self.root = os.fspath(self.root)
        self.out = os.fspath(self.out)
        if self.tensorboard is not None:
            self.tensorboard = os.fspath(self.tensorboard)

    def _check_model_settings(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"GANConfig.model must be one of {MODELS}, got {self.model!r}")
        steps = self.sampling_steps
        self.sampling_steps = check_integer("GANConfig.sampling_steps", steps, 1, 1000)
        scale = self.guidance_scale
        if not is_real(scale) or not math.isfinite(scale) or scale < 0:
            raise ValueError(f"GANConfig.guidance_scale must be a number >= 0, got {scale!r}")
        dropout = self.label_dropout
        if not is_real(dropout) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"GANConfig.label_dropout must be in [0, 1), got {dropout!r}")
        if self.model == "dcgan":
            defaults = {f.name: f.default for f in dataclasses.fields(self)}
            changed = [n for n in DIFFUSION_SETTINGS if getattr(self, n) != defaults[n]]
            if changed:
                raise ValueError(
                    f"GANConfig.{changed[0]} applies to model='ddpm' (--model ddpm) only; this run's model is "
                    "'dcgan'"
                )

    def _check_pool(self) -> None:
        from medgan_aug.data.pools import POOL_LABELLED, check_pool_setting  # numpy/torch: not for ``--help``

        self.pool = check_pool_setting(self.pool, "GANConfig.pool")
        if self.pool != POOL_LABELLED and self.conditional and self.model == "dcgan":
            import inspect

            from medgan_aug.engines.gan_trainer import GANTrainer

            if "labelled" not in inspect.signature(GANTrainer).parameters:
                raise ValueError(
                    f"GANConfig.pool={self.pool!r} with a conditional DCGAN needs the semi-supervised trainer "
                    "(GANTrainer's labelled mask), which this version lacks: train an unconditional DCGAN "
                    "(--no-conditional), a ddpm (--model ddpm), or use --pool labelled"
                )

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data (a run's ``config.json``); a DCGAN run leaves out
        :data:`DIFFUSION_SETTINGS` (all at their defaults), every run :data:`OMITTED_AT_DEFAULT` at default."""
        settings = dataclasses.asdict(self)
        if self.model == "dcgan":
            for name in DIFFUSION_SETTINGS:
                del settings[name]
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in OMITTED_AT_DEFAULT:
            if settings[name] == defaults[name]:
                del settings[name]
        return settings
