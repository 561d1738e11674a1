"""Training engines: the GAN and diffusion trainers (MONAI ``Trainer``s), the classifier trainer (a MONAI ``SupervisedTrainer``)
and distributed helpers."""

from __future__ import annotations

from medgan_aug.engines.classifier_engine import ClassifierTrainer
from medgan_aug.engines.classifier_trainer import extract_features, predict, train_classifier
from medgan_aug.engines.diffusion_trainer import DIFFUSION_LOSS_COLUMNS, DiffusionTrainer
from medgan_aug.engines.distributed import (
    Shard,
    ShardedBatches,
    ShardedBatchSampler,
    ShardedDiffAugment,
    SyncBatchNorm2d,
    all_reduce_sum,
    convert_sync_batchnorm,
    current_shard,
    distributed_context,
    rank_seed,
    run_on_main,
    single_process,
)
from medgan_aug.engines.gan_losses import (
    GANObjective,
    LeCamAnchors,
    auxiliary_classification_loss,
    consistency_penalty,
    discriminator_loss,
    generator_loss,
    lecam_penalty,
)
from medgan_aug.engines.gan_trainer import LOSSES, LR_SCHEDULES, GANTrainer, run_seeds
