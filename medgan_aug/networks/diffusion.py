"""A conditional diffusion generator on MONAI's diffusion parts, behind the same generator protocol as the DCGAN.

:class:`DiffusionGenerator` wraps MONAI's ``DiffusionModelUNet`` (2D), trained as a denoising diffusion
probabilistic model (Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020: predict the
noise added at a random step of a 1000-step linear-beta schedule, MSE loss; MONAI's ``DDPMScheduler``) and
sampled with DDIM (Song, Meng & Ermon, "Denoising Diffusion Implicit Models", ICLR 2021; MONAI's
``DDIMScheduler`` with eta = 0, which is deterministic: the image is a pure function of the initial noise and
the labels). medgan_aug writes neither the UNet nor the schedulers; it adds the label conditioning, the
padding, classifier-free guidance settings and the generator protocol.

The generator protocol (what :class:`~medgan_aug.data.SyntheticDataset`, ``MixSyntheticd``, the sample grids
and the metrics call): ``forward(z (B, latent_dim), labels (B, num_labels) | None) -> (B, C, H, W)`` in
[-1, 1], with ``image_size``, ``latent_dim``, ``num_labels`` and ``out_channels`` as attributes. Here ``z``
is the flattened initial noise ``x_T`` of the padded image (``latent_dim = C * padded_size**2``) and the
forward pass is the whole DDIM chain (``num_inference_steps`` UNet evaluations, twice the batch with
guidance), so a synthetic item stays a pure function of its index and seed, exactly as with the DCGAN.

Image size: 28 px images are reflect-padded by 2 pixels to 32 (``padded_size``) for training, so that the
UNet's two downsamplings see even sizes and the padded border continues the image instead of adding an
edge; sampling makes 32 px images and crops the centre 28 px back. 64 px images are used as they are.
(The three-level UNet also fits 28 px directly, 28 -> 14 -> 7: ``padded_size=28`` does that, at 0.77x the
compute.)

Conditioning (``num_labels > 0``): the label vector (14 multi-hot findings for ChestMNIST, one 0/1 column for
PneumoniaMNIST) becomes a cross-attention context of one token per label (:class:`LabelContext`: token ``i``
moves from a learned "absent" to a learned "present" embedding of label ``i`` as ``y_i`` goes from 0 to 1),
read by the UNet's cross-attention (``with_conditioning=True``). Classifier-free guidance (Ho & Salimans,
"Classifier-Free Diffusion Guidance", NeurIPS 2021 workshop, arXiv:2207.12598): in training the context of a
``label_dropout`` share of the batch is replaced by the null context, a tensor of zeros (the fill value MONAI's
``DiffusionInferer.sample`` gives the unconditional half); at sampling the noise estimate is
``eps(x, null) + (1 + w) * (eps(x, y) - eps(x, null))`` with the guidance scale ``w`` of Ho & Salimans
(``w = 0``: the plain conditional model, one UNet pass per step; MONAI's ``cfg`` is ``1 + w``).

Default architecture (``base_channels=32``): channels (32, 64, 64), one residual block per level, attention
(self and cross) at the lowest level only; 1.41 M parameters with 14 labels.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from monai.inferers import DiffusionInferer
from monai.networks.nets import DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler
from torch import nn
from torch.nn import functional as F

from medgan_aug.utils.validation import check_integer, is_real

__all__ = ["DIFFUSION_SIZES", "NULL_CONTEXT_VALUE", "LabelContext", "DiffusionGenerator"]


#: Image sizes the diffusion generator makes (those of the DCGAN and MedMNIST).
DIFFUSION_SIZES = (28, 64)

#: The null context of classifier-free guidance is filled with this value (MONAI's ``cfg_fill_value``).
NULL_CONTEXT_VALUE = 0.0

#: The noise schedule of training and sampling (DDPM's linear betas from 1e-4 to 0.02).
_SCHEDULE = "linear_beta"


def _int(name: str, value: Any, minimum: int) -> int:
    return check_integer(f"DiffusionGenerator: {name}", value, minimum)


def _guidance(value: Any) -> float:
    if not is_real(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"DiffusionGenerator: guidance_scale must be a number >= 0, got {value!r}")
    return float(value)


class LabelContext(nn.Module):
    """A label vector ``(B, L)`` as ``L`` cross-attention tokens ``(B, L, dim)``.

    Token ``i`` is ``absent_i + y_i * (present_i - absent_i)``: a learned embedding of "finding i absent"
    moving to one of "finding i present" (soft labels interpolate). An all-zero label vector ("no finding")
    is thus a context of its own, distinct from the all-zero null context of classifier-free guidance.

    Args:
        num_labels: ``L``.
        dim: token width (the UNet's ``cross_attention_dim``).
    """

    def __init__(self, num_labels: int, dim: int) -> None:
        super().__init__()
        self.num_labels, self.dim = int(num_labels), int(dim)
        self.absent = nn.Parameter(torch.randn(self.num_labels, self.dim))
        self.present = nn.Parameter(torch.randn(self.num_labels, self.dim))

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        y = labels.to(self.absent.dtype)[..., None]
        return self.absent + y * (self.present - self.absent)


class DiffusionGenerator(nn.Module):
    """MONAI's ``DiffusionModelUNet`` as a (conditional) generator: DDPM training, deterministic DDIM sampling.

    See the module docstring for the method, the conditioning and the generator protocol.

    Args:
        image_size: 28 or 64 (the images it makes).
        num_labels: width of the label vector (0 or None: unconditional; such a model refuses labels).
        base_channels: ``c``; the UNet's levels have (c, 2c, 2c) channels.
        out_channels: image channels.
        padded_size: the size the UNet works at (None: 32 for 28 px, else ``image_size``); images are
            reflect-padded to it in training and sampled images cropped back.
        num_res_blocks: residual blocks per level.
        num_train_timesteps: steps of the training noise schedule (DDPM: 1000).
        num_inference_steps: DDIM steps per sample (at most ``num_train_timesteps``).
        guidance_scale: classifier-free guidance ``w`` (0: none); conditional models only.

    Attributes:
        unet: the ``DiffusionModelUNet``.
        context: the :class:`LabelContext` (None when unconditional).
        latent_dim: ``out_channels * padded_size**2``, the length of the flattened initial noise ``z``.
    """

    def __init__(
        self,
        image_size: int = 28,
        num_labels: int | None = 0,
        base_channels: int = 32,
        out_channels: int = 1,
        padded_size: int | None = None,
        num_res_blocks: int = 1,
        num_train_timesteps: int = 1000,
        num_inference_steps: int = 50,
        guidance_scale: float = 0.0,
    ) -> None:
        super().__init__()
        if isinstance(image_size, bool) or image_size not in DIFFUSION_SIZES:
            raise ValueError(
                f"DiffusionGenerator: image_size must be one of {DIFFUSION_SIZES}, got {image_size!r}"
            )
        self.image_size = int(image_size)
        self.num_labels = 0 if num_labels is None else _int("num_labels", num_labels, 0)
        self.base_channels = _int("base_channels", base_channels, 4)
        self.out_channels = _int("out_channels", out_channels, 1)
        if padded_size is None:
            padded_size = 32 if self.image_size == 28 else self.image_size
        self.padded_size = _int("padded_size", padded_size, self.image_size)
        if self.padded_size % 4 or (self.padded_size - self.image_size) % 2:
            raise ValueError(
                f"DiffusionGenerator: padded_size must be a multiple of 4 (two downsamplings) and exceed "
                f"image_size {self.image_size} by an even number, got {padded_size!r}"
            )
        self.num_res_blocks = _int("num_res_blocks", num_res_blocks, 1)
        self.num_train_timesteps = _int("num_train_timesteps", num_train_timesteps, 2)
        self.num_inference_steps = 1
        self.guidance_scale = 0.0
        self.set_sampling(num_inference_steps, guidance_scale)
        c = self.base_channels
        self.pad = (self.padded_size - self.image_size) // 2
        self.latent_dim = self.out_channels * self.padded_size**2
        conditional = self.num_labels > 0
        self.unet = DiffusionModelUNet(
            spatial_dims=2,
            in_channels=self.out_channels,
            out_channels=self.out_channels,
            num_res_blocks=self.num_res_blocks,
            channels=(c, 2 * c, 2 * c),
            attention_levels=(False, False, True),
            norm_num_groups=math.gcd(32, c),
            num_head_channels=math.gcd(32, 2 * c),
            with_conditioning=conditional,
            cross_attention_dim=2 * c if conditional else None,
        )
        self.context = LabelContext(self.num_labels, 2 * c) if conditional else None

    # ------------------------------------------------------------------ settings
    @property
    def arch(self) -> dict[str, Any]:
        """The constructor arguments (what a model file records), sampling settings included."""
        return {
            "image_size": self.image_size,
            "num_labels": self.num_labels,
            "base_channels": self.base_channels,
            "out_channels": self.out_channels,
            "padded_size": self.padded_size,
            "num_res_blocks": self.num_res_blocks,
            "num_train_timesteps": self.num_train_timesteps,
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": self.guidance_scale,
        }

    def set_sampling(
        self, num_inference_steps: int | None = None, guidance_scale: float | None = None
    ) -> None:
        """Change the DDIM steps and/or the guidance scale used by :meth:`forward` (None: keep)."""
        if num_inference_steps is not None:
            steps = _int("num_inference_steps", num_inference_steps, 1)
            if steps > self.num_train_timesteps:
                raise ValueError(
                    f"DiffusionGenerator: num_inference_steps {steps} exceeds num_train_timesteps "
                    f"{self.num_train_timesteps}"
                )
            self.num_inference_steps = steps
        if guidance_scale is not None:
            scale = _guidance(guidance_scale)
            if scale > 0 and not getattr(self, "num_labels", 0):
                raise ValueError(
                    "DiffusionGenerator: guidance_scale > 0 needs a conditional model (num_labels > 0)"
                )
            self.guidance_scale = scale

    def train_scheduler(self) -> DDPMScheduler:
        """MONAI's ``DDPMScheduler`` of the training noise schedule (Ho et al. 2020)."""
        return DDPMScheduler(num_train_timesteps=self.num_train_timesteps, schedule=_SCHEDULE)

    def sample_scheduler(self) -> DDIMScheduler:
        """MONAI's ``DDIMScheduler`` (Song et al. 2021) on the same schedule, set to ``num_inference_steps``."""
        scheduler = DDIMScheduler(num_train_timesteps=self.num_train_timesteps, schedule=_SCHEDULE)
        scheduler.set_timesteps(self.num_inference_steps)
        return scheduler

    # ------------------------------------------------------------------ pieces
    def _labels(self, labels: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if self.num_labels == 0:
            if labels is not None:
                raise ValueError(
                    "DiffusionGenerator is unconditional (num_labels=0): it takes no labels; label its images "
                    "with a labeller (SyntheticDataset(labeller=...)) instead"
                )
            return None
        if labels is None:
            raise ValueError(
                f"DiffusionGenerator is conditional (num_labels={self.num_labels}): labels of shape "
                f"(B, {self.num_labels}) are required"
            )
        if not isinstance(labels, torch.Tensor) or labels.shape != (batch, self.num_labels):
            shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise ValueError(
                f"DiffusionGenerator: labels must have shape ({batch}, {self.num_labels}), got {shape}"
            )
        return labels.float()

    def conditioning(
        self, labels: torch.Tensor | None, drop: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """The cross-attention context of ``labels`` (None when unconditional); rows where ``drop`` (a bool
        ``(B,)`` mask) is True get the null context (label dropout of classifier-free guidance)."""
        y = self._labels(labels, 0 if labels is None else len(labels))
        if y is None or self.context is None:
            return None
        context = self.context(y)
        if drop is not None:
            null = torch.full_like(context, NULL_CONTEXT_VALUE)
            context = torch.where(drop.to(context.device)[:, None, None], null, context)
        return context

    def pad_images(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, image_size, image_size)`` in [-1, 1] -> ``(B, C, padded_size, padded_size)``, reflect-padded."""
        if self.pad == 0:
            return images
        return F.pad(images, (self.pad,) * 4, mode="reflect")

    def crop_images(self, images: torch.Tensor) -> torch.Tensor:
        """The centre ``image_size`` pixels of padded images (the inverse of :meth:`pad_images`)."""
        p = self.pad
        return images if p == 0 else images[..., p : p + self.image_size, p : p + self.image_size]

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """DDIM samples (eta 0) from the initial noise ``z`` ``(B, latent_dim)``: ``(B, C, H, W)`` in [-1, 1]."""
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.latent_dim:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"DiffusionGenerator: z must have shape (B, {self.latent_dim}), got {shape}")
        self._labels(labels, z.shape[0])  # one clear line for labels that do not fit this model
        context = self.conditioning(labels)
        noise = z.reshape(-1, self.out_channels, self.padded_size, self.padded_size)
        scheduler = self.sample_scheduler()
        guided = context is not None and self.guidance_scale > 0
        images = DiffusionInferer(scheduler).sample(
            input_noise=noise,
            diffusion_model=self.unet,
            scheduler=scheduler,
            conditioning=context,
            mode="crossattn",
            verbose=False,
            cfg=1.0 + self.guidance_scale if guided else None,
            cfg_fill_value=NULL_CONTEXT_VALUE,
        )
        return self.crop_images(images).clamp(-1.0, 1.0)
