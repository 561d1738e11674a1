"""ignite/MONAI event handlers for training runs: loss log, checkpoints, sample grids, progress."""

from __future__ import annotations

from medgan_aug.handlers.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointManager,
    PeriodicCheckpoint,
    load_checkpoint,
)
from medgan_aug.handlers.loss_log import LossCSV
from medgan_aug.handlers.progress import IterationProgress
from medgan_aug.handlers.sample_grid import SampleGrid
