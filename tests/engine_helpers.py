"""Helpers shared by the test modules (imported as ``engine_helpers``: pytest puts this folder on sys.path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ignite.engine import Events

from medgan_aug.apps.train import GANConfig
from medgan_aug.data import sample_path


class StopAt:
    """A handler that terminates the engine after iteration ``n`` (simulates a run interrupted there)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED(once=self.n), lambda e: e.terminate())


#: The tiny DCGAN run most tests train: conditional, a tenth of the packaged 28 px NIH1000 sample (69
#: images), base width 8, 4 images per sample grid, one batch of standing statistics, one thread, no bar.
TINY_GAN = dict(
    conditional=True,
    fraction=0.1,
    batch_size=16,
    base_channels=8,
    n_samples=4,
    standing_stats_batches=1,
    threads=1,
    progress=False,
)

#: The tiny conditional diffusion run (MONAI DiffusionModelUNet, base width 4, 2 sampling steps) the DDPM
#: tests train, as keyword settings: they also become command-line flags there.
TINY_DDPM = dict(
    sample="nih1000",
    model="ddpm",
    conditional=True,
    base_channels=4,
    batch_size=8,
    fraction=0.1,
    sampling_steps=2,
    n_samples=4,
    threads=1,
    progress=False,
    seed=3,
)


def tiny_gan_config(out: str | Path, *, iterations: int, **overrides) -> GANConfig:
    """A ``GANConfig`` for a tiny run of ``iterations`` steps into ``out`` on the packaged NIH1000 sample:
    ``TINY_GAN`` with ``overrides`` on top (``path=`` for another file; a test's deliberate differences)."""
    settings = {"path": str(sample_path("nih1000")), **TINY_GAN, **overrides}
    return GANConfig(out=str(out), iterations=iterations, **settings)


REPO = Path(__file__).resolve().parents[1]


def load_script(relative: str) -> ModuleType:
    """A script of the repository that is not a package module (``experiments/x.py``, ``benchmarks/x.py``),
    imported under its file stem and registered in ``sys.modules`` (dataclasses and pickling look it up)."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
