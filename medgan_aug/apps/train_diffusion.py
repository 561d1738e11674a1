"""Building a diffusion run's trainer (``medgan-aug train --model ddpm``): the counterpart of
:func:`medgan_aug.apps.train.build_gan_trainer` for :class:`~medgan_aug.networks.diffusion.DiffusionGenerator`.

The run folder, checkpoints, resume, sample grids, loss log and the exported ``generator.pt`` are those of
:func:`medgan_aug.apps.train_gan`, which calls :func:`build_diffusion_trainer` when ``config.model == "ddpm"``.
Of the :class:`GANConfig` settings a diffusion run uses ``size``, ``conditional``, ``base_channels`` (the
UNet's c/2c/2c), ``iterations``, ``batch_size``, ``lr_g`` (Adam's learning rate, with DDPM's betas
(0.9, 0.999); Ho et al. 2020), ``lr_schedule``, ``ema_decay``, ``precision``, ``channels_last``, ``seed``, the
run settings, and its own ``sampling_steps``, ``guidance_scale`` and ``label_dropout``; ``latent_dim``, the
discriminator, loss and augmentation settings and ``beta1``/``beta2`` are the GAN's.

It trains on the run's pool (``config.pool``, :mod:`medgan_aug.data.pools`). A conditional model on a pool
with unlabelled images gets :class:`~medgan_aug.data.pools.PoolBatches`: their unlabelled rows train with
the null context, the one classifier-free guidance's label dropout uses, so the model learns the unlabelled
X-rays as its unconditional half (as semi-supervised diffusion does; Ho & Salimans 2022).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from medgan_aug.apps.train_config import GANConfig
from medgan_aug.data.batches import SeededBatches
from medgan_aug.data.pools import PoolBatches
from medgan_aug.engines.diffusion_trainer import DiffusionTrainer
from medgan_aug.engines.gan_trainer import lr_lambda, run_seeds
from medgan_aug.networks.diffusion import DiffusionGenerator
from medgan_aug.utils.devices import resolve_device, resolve_precision

__all__ = ["DIFFUSION_BETAS", "build_diffusion_trainer"]


#: Adam's betas for the diffusion UNet (DDPM's; the GAN's beta1 = 0.5 is a GAN choice).
DIFFUSION_BETAS = (0.9, 0.999)


def build_diffusion_trainer(
    config: GANConfig, subset: Any, handlers: Sequence | None = None
) -> DiffusionTrainer:
    """The :class:`DiffusionGenerator`, its optimiser and schedule, and the :class:`DiffusionTrainer` for
    ``config`` (``model="ddpm"``) on ``subset`` (a :class:`~medgan_aug.apps.train.GANSubset`), in one
    process; the seeds are the GAN run's (:func:`run_seeds`)."""
    if config.model != "ddpm":
        raise ValueError(f"build_diffusion_trainer needs model='ddpm', got {config.model!r}")
    seeds = run_seeds(config.seed)
    torch.manual_seed(seeds["init"])
    np.random.seed(seeds["init"] % (2**32))
    random.seed(seeds["init"])
    device = resolve_device(config.device)
    num_labels = subset.info["num_labels"] if config.conditional else 0
    generator = DiffusionGenerator(
        config.size,
        num_labels,
        config.base_channels,
        subset.info["num_channels"],
        num_inference_steps=config.sampling_steps,
        guidance_scale=config.guidance_scale if num_labels else 0.0,
    ).to(device)
    if config.channels_last:
        generator.unet.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=DIFFUSION_BETAS)
    fn = lr_lambda(config.lr_schedule, config.iterations)
    scheduler = None if fn is None else torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
    images = subset.pool_images.to(device)
    if num_labels and subset.unlabelled_pool:  # unlabelled pool images train with the null context
        batches: SeededBatches = PoolBatches(
            images,
            subset.pool_targets.to(device),
            subset.pool_labelled.to(device),
            config.batch_size,
            seeds["data"],
        )
    else:
        batches = SeededBatches(
            images, subset.pool_targets.to(device) if num_labels else None, config.batch_size, seeds["data"]
        )
    return DiffusionTrainer(
        device,
        generator,
        optimizer,
        batches,
        config.iterations,
        label_dropout=config.label_dropout,
        ema_decay=config.ema_decay,
        scheduler=scheduler,
        noise_seed=seeds["noise"],
        train_handlers=handlers,
        precision=resolve_precision(config.precision, torch.device(device)),
        channels_last=config.channels_last,
    )
