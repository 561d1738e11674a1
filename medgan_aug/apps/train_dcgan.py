"""Building a DCGAN run's trainer (``medgan-aug train``, ``--model dcgan``): the networks, their optimisers and
schedules, the seeded batches and augmentation, and the :class:`~medgan_aug.engines.GANTrainer` over them.

The run folder, checkpoints, resume, sample grids, loss log and the exported ``generator.pt`` are those of
:func:`medgan_aug.apps.train_gan`, which calls :func:`build_gan_trainer` when ``config.model == "dcgan"``;
:func:`medgan_aug.apps.train_diffusion.build_diffusion_trainer` is its counterpart for ``--model ddpm``.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.apps.train_config import GANConfig
from medgan_aug.data.batches import SeededBatches
from medgan_aug.engines.distributed import ShardedBatches, ShardedDiffAugment
from medgan_aug.engines.gan_losses import GANObjective
from medgan_aug.engines.gan_trainer import GANTrainer, lr_lambda, run_seeds
from medgan_aug.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from medgan_aug.transforms.adaptive import AdaptiveAugment
from medgan_aug.transforms.diffaugment import DiffAugment
from medgan_aug.utils.devices import resolve_device, resolve_precision

__all__ = ["build_gan_trainer"]


def _networks(
    config: GANConfig, num_labels: int, channels: int, aux_weight: float, device: Any, shard: Any
) -> tuple[nn.Module, nn.Module]:
    """G and D (Radford et al. 2016; D with an auxiliary classifier head when ``aux_weight`` > 0, Odena et al.
    2017) on ``device``, channels-last if asked, prepared for data-parallel training under ``shard``."""
    G = DCGANGenerator(config.size, config.latent_dim, num_labels, config.base_channels, channels).to(device)
    D = DCGANDiscriminator(
        config.size, num_labels, config.base_channels, channels, config.spectral_norm, aux_weight > 0
    ).to(device)
    if config.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    if shard is not None:
        G, D = shard.prepare(G), shard.prepare(D)
    return G, D


def _optimisers(config: GANConfig, G: nn.Module, D: nn.Module) -> dict[str, Any]:
    """Adam for G and D, and their learning-rate schedules (None for a constant rate), as GANTrainer's
    ``g_opt``/``d_opt``/``g_scheduler``/``d_scheduler``."""
    g_opt = torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=(config.beta1, config.beta2))
    d_opt = torch.optim.Adam(D.parameters(), lr=config.lr_d, betas=(config.beta1, config.beta2))
    g_sched = d_sched = None
    fn = lr_lambda(config.lr_schedule, config.iterations)
    if fn is not None:
        g_sched = torch.optim.lr_scheduler.LambdaLR(g_opt, fn)
        d_sched = torch.optim.lr_scheduler.LambdaLR(d_opt, fn)
    return {"g_opt": g_opt, "d_opt": d_opt, "g_scheduler": g_sched, "d_scheduler": d_sched}


def _semi_supervised(config: GANConfig, subset: Any, num_labels: int, device: Any) -> dict[str, Any]:
    """GANTrainer's ``labelled`` mask when a conditional DCGAN trains on a pool with unlabelled images (AC-GAN's
    auxiliary loss and projection on labelled rows only); else nothing."""
    if not (num_labels and subset.unlabelled_pool):
        return {}
    if "labelled" not in inspect.signature(GANTrainer).parameters:
        raise ValueError(
            f"pool {config.pool!r} with a conditional DCGAN needs the semi-supervised trainer (GANTrainer's "
            "labelled mask), which this version lacks: train it unconditional, as a ddpm, or on the "
            "labelled pool"
        )
    return {"labelled": subset.pool_labelled.to(device)}


def build_gan_trainer(
    config: GANConfig, subset: Any, handlers: Sequence | None = None, shard: Any = None
) -> GANTrainer:
    """Networks, optimisers, schedulers, augmentation and the :class:`GANTrainer` for ``config`` on ``subset``
    (a :class:`~medgan_aug.apps.train.GANSubset`).

    ``shard`` (a :class:`medgan_aug.engines.Shard`, under torchrun) makes it data-parallel: synchronised
    BatchNorm, rank 0's initial weights, and this rank's slice of every batch, noise and augmentation draw.
    """
    seeds = run_seeds(config.seed)
    torch.manual_seed(seeds["init"])
    np.random.seed(seeds["init"] % (2**32))
    random.seed(seeds["init"])
    device = resolve_device(config.device) if shard is None else shard.device
    num_labels = subset.info["num_labels"] if config.conditional else 0
    aux_weight = config.aux_weight if num_labels else 0.0  # the auxiliary loss acts on conditional runs only
    G, D = _networks(config, num_labels, subset.info["num_channels"], aux_weight, device, shard)
    optimisers = _optimisers(config, G, D)
    augment = DiffAugment(config.diffaugment, seed=seeds["augment"]) if config.diffaugment.strip() else None
    batch_args = (
        subset.pool_images.to(device),
        subset.pool_targets.to(device) if num_labels else None,
        config.batch_size,
        seeds["data"],
    )
    semi_supervised = _semi_supervised(config, subset, num_labels, device)
    if shard is None:
        batches = SeededBatches(*batch_args)
    else:
        batches = ShardedBatches(*batch_args, shard)
        augment = None if augment is None else ShardedDiffAugment(augment, shard)
    if config.ada_target > 0 and augment is not None:
        augment = AdaptiveAugment(augment, config.ada_target, config.ada_kimg, seed=seeds["ada"], shard=shard)
    trainer = GANTrainer(
        device,
        G,
        D,
        optimisers["g_opt"],
        optimisers["d_opt"],
        batches,
        config.iterations,
        objective=GANObjective(
            loss=config.loss,
            d_steps=config.d_steps,
            r1_gamma=config.r1_gamma,
            lecam_weight=config.lecam_weight,
            bcr_weight=config.bcr_weight,
            aux_weight=aux_weight,
        ),
        ema_decay=config.ema_decay,
        augment=augment,
        g_scheduler=optimisers["g_scheduler"],
        d_scheduler=optimisers["d_scheduler"],
        noise_seed=seeds["noise"],
        train_handlers=handlers,
        shard=shard,
        precision=resolve_precision(config.precision, torch.device(device)),
        channels_last=config.channels_last,
        **semi_supervised,
    )
    if shard is not None:
        shard.unsync(trainer.generator_ema)  # the EMA copy only ever runs on rank 0
    return trainer
