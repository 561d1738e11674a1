"""ignite/MONAI event handlers for training runs: loss logs, checkpoints, sample grids, progress, weight EMA,
model selection on a validation score, TensorBoard event files, and the finite-loss check both engines share."""

from __future__ import annotations

from medgan_aug.handlers.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointManager,
    PeriodicCheckpoint,
    load_checkpoint,
)
from medgan_aug.handlers.ema import WeightEMA
from medgan_aug.handlers.finite_loss import check_finite_loss
from medgan_aug.handlers.loss_log import LossCSV, LossHistory
from medgan_aug.handlers.model_selection import ValidationSelection
from medgan_aug.handlers.progress import IterationProgress
from medgan_aug.handlers.sample_grid import SampleGrid
from medgan_aug.handlers.tensorboard import TensorBoardRun
