"""TensorBoard event files for a training run, through MONAI's ``TensorBoardStatsHandler``.

``medgan-aug train --tensorboard DIR`` and ``medgan-aug classify --tensorboard DIR`` attach a
:class:`TensorBoardRun` to their engine (on the main process only under ``torchrun``): one scalar per
iteration for each tag (the names are ``losses.csv``'s columns: ``loss_d``, ``loss_g``, ``lr_g``, ``lr_d``,
``ada_p`` for a GAN; ``loss`` and ``lr`` for a classifier), and, for a GAN, each sample grid the run saves into
``samples/`` as an image (tag ``samples``) at the same iteration. Read with ``tensorboard --logdir DIR``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ignite.engine import Engine, Events

from medgan_aug.handlers.loss_log import LossCSV
from medgan_aug.transforms.adaptive import AdaptiveAugment

__all__ = [
    "TRAINING_SCALARS",
    "TensorBoardRun",
    "classifier_scalars",
    "generator_scalar_tags",
    "output_scalars",
]

Scalars = Callable[[Engine], Mapping[str, Any]]

#: The ``losses.csv`` columns a generator run plots: G's and D's losses and learning rates (a diffusion
#: run's ``loss`` and ``lr``); ``ada_p`` is added where adaptive augmentation is on.
TRAINING_SCALARS = ("loss_d", "loss_g", "lr_g", "lr_d", "loss", "lr")


def generator_scalar_tags(trainer: Engine) -> tuple[str, ...]:
    """The scalars of a generator trainer's output to plot: :data:`TRAINING_SCALARS` among its loss columns,
    and ``ada_p`` (the adaptive augmentation probability) where its augmentation is adaptive."""
    columns = getattr(trainer, "loss_columns", None) or LossCSV.COLUMNS
    adaptive = isinstance(getattr(trainer, "augment", None), AdaptiveAugment)
    return tuple(c for c in columns if c in TRAINING_SCALARS or (c == "ada_p" and adaptive))


def output_scalars(keys: Sequence[str]) -> Scalars:
    """The entries ``keys`` of ``engine.state.output`` (a GAN's losses, learning rates, ADA probability)."""
    keys = tuple(keys)

    def scalars(engine: Engine) -> dict[str, Any]:
        out = engine.state.output
        return {key: out[key] for key in keys if key in out}

    return scalars


def classifier_scalars(engine: Engine) -> dict[str, Any]:
    """A classifier step's loss (``engine.state.output["loss"]``) and the optimiser's learning rate."""
    return {"loss": engine.state.output["loss"], "lr": engine.optimizer.param_groups[0]["lr"]}


def _summary_writer(log_dir: str | Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:  # torch's writer needs the tensorboard package
        raise ImportError(
            "--tensorboard needs the tensorboard package: pip install 'medgan_aug[tensorboard]'"
        ) from err
    return SummaryWriter(log_dir=str(log_dir))


class TensorBoardRun:
    """Write a training engine's scalars every iteration, and its saved sample grids, to TensorBoard.

    The scalars go through :class:`monai.handlers.TensorBoardStatsHandler` (iteration level; the step is
    ``engine.state.iteration``, so a resumed run continues its curves); sample grids are the PNG files a
    :class:`~medgan_aug.handlers.SampleGrid` attached before this handler writes, added as they are saved.

    Args:
        log_dir: the folder for the event files (created).
        scalars: ``engine -> {tag: number}`` per iteration (:func:`output_scalars`, :func:`classifier_scalars`).
        samples: the folder of the run's sample grids (``iter_<iteration>.png``); None: no images.
    """

    def __init__(self, log_dir: str | Path, scalars: Scalars, samples: str | Path | None = None) -> None:
        from monai.handlers import TensorBoardStatsHandler

        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.writer = _summary_writer(log_dir)
        self.scalars = scalars
        self.samples = None if samples is None else Path(samples)
        self.stats = TensorBoardStatsHandler(
            summary_writer=self.writer,
            epoch_log=False,  # the engines' epochs are passes over a small subset, not a useful x-axis
            output_transform=lambda output: None,  # unused: the iteration writer below reads the engine
            iteration_event_writer=self._write_scalars,
        )

    def attach(self, engine: Engine) -> None:
        """Attach to ``engine``: scalars (and sample grids) at every iteration, the writer closed at the end."""
        self.stats.attach(engine)
        if self.samples is not None:
            engine.add_event_handler(Events.ITERATION_COMPLETED, self._write_samples)
        engine.add_event_handler(Events.COMPLETED, self.close)

    def _write_scalars(self, engine: Engine, writer: Any) -> None:
        step = engine.state.iteration
        for tag, value in sorted(self.scalars(engine).items()):
            writer.add_scalar(tag, float(value), step)
        writer.flush()

    def _write_samples(self, engine: Engine) -> None:
        path = self.samples / f"iter_{engine.state.iteration:08d}.png"
        if path.is_file():  # saved by the sample-grid handler at this iteration
            from PIL import Image

            with Image.open(path) as image:
                grid = np.asarray(image.convert("L"))
            self.writer.add_image("samples", grid, engine.state.iteration, dataformats="HW")
            self.writer.flush()

    def close(self, engine: Engine | None = None) -> None:
        """Flush and close the event file."""
        self.writer.close()
