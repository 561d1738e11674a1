"""Rotated, atomically written training checkpoints (``ckpt_XXXXXXXX.pt``), the handler that saves them,
and the loader that falls back to the newest readable one.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from medgan_aug.utils.errors import CorruptFileError
from medgan_aug.utils.serialization import atomic_torch_save, safe_torch_load
from medgan_aug.utils.temp_files import remove_orphan_temp_files

__all__ = [
    "CheckpointManager",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "load_checkpoint",
    "PeriodicCheckpoint",
]


_NAME = re.compile(r"^ckpt_(\d{8})\.pt$")


_TARGET = r"ckpt_\d{8}\.pt"  # the names this folder's orphaned temporary files were meant to get


# Not ignite's Checkpoint/DiskSaver (atomic too, with n_saved rotation): loading the newest *readable* file
# with a warning, telling a hostile file from a truncated one, and dropping checkpoints past a resume point are ours.
class CheckpointManager:
    """Rotating, atomic checkpoints ``ckpt_<iteration:08d>.pt`` in one folder.

    Args:
        directory: the checkpoint folder (created on first save).
        n_saved: how many of the newest checkpoints to keep (>= 1).
    """

    def __init__(self, directory: str | os.PathLike, n_saved: int = 3) -> None:
        if not isinstance(n_saved, int) or n_saved < 1:
            raise ValueError(f"n_saved must be an integer >= 1, got {n_saved!r}")
        self.directory = Path(directory)
        self.n_saved = n_saved

    def path_for(self, iteration: int) -> Path:
        return self.directory / f"ckpt_{iteration:08d}.pt"

    def list(self) -> list[tuple[int, Path]]:
        """(iteration, path) of every checkpoint file, oldest first (temporary files are ignored)."""
        if not self.directory.is_dir():
            return []
        found = []
        for entry in self.directory.iterdir():
            match = _NAME.match(entry.name)
            if match and entry.is_file():
                found.append((int(match.group(1)), entry))
        return sorted(found)

    def save(
        self, state: dict[str, Any], iteration: int, superseded: Callable[[int], bool] | None = None
    ) -> Path:
        """Write ``state`` atomically for ``iteration``, then delete all but the newest ``n_saved``.

        Args:
            state: what to save.
            iteration: its iteration (the file name).
            superseded: older checkpoints whose iteration it accepts are deleted once the new file is in
                place, before the rotation counts (the end checkpoint of a run that is being extended).
        """
        path = atomic_torch_save(state, self.path_for(iteration))
        if superseded is not None:
            for it, old in self.list():
                if it < iteration and superseded(it):
                    old.unlink(missing_ok=True)
        for _, old in self.list()[: -self.n_saved]:
            old.unlink(missing_ok=True)
        return path

    def remove_orphans(self) -> list[Path]:
        """Delete temporary checkpoint files left by a killed save (:mod:`medgan_aug.utils.temp_files`)."""
        return remove_orphan_temp_files(self.directory, [_TARGET])

    def remove_after(self, iteration: int) -> None:
        """Delete checkpoints newer than ``iteration`` (they belong to an abandoned future on resume)."""
        for it, path in self.list():
            if it > iteration:
                path.unlink(missing_ok=True)

    def load_latest(self, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], Path] | None:
        """Load the newest readable checkpoint.

        A truncated or corrupt newer file is skipped with a warning that names it. A file refused as
        unsafe is *not* skipped: :class:`UnsafeFileError` propagates, because a hostile file in the
        run folder needs a human, not a silent fallback.

        Returns:
            ``(state, path)``, or None if the folder holds no checkpoint at all.

        Raises:
            CorruptFileError: checkpoints exist but none is readable.
            UnsafeFileError: the newest file examined is refused as unsafe.
        """
        candidates = self.list()
        if not candidates:
            return None
        bad: list[str] = []
        for _, path in reversed(candidates):
            try:
                state = load_checkpoint(path, map_location=map_location)
            except CorruptFileError as err:
                warnings.warn(
                    f"skipping unreadable checkpoint {path}: {err}; trying the previous one", stacklevel=2
                )
                bad.append(str(path))
                continue
            return state, path
        raise CorruptFileError(
            f"no readable checkpoint in {self.directory}: every file is corrupt ({', '.join(bad)}). "
            "Start a new run (without --resume) or restore a checkpoint from a backup."
        )


CHECKPOINT_FORMAT = "medgan_aug.gan_checkpoint"


CHECKPOINT_VERSION = 1


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read one GAN checkpoint safely and check that it is one.

    Raises:
        FileNotFoundError, UnsafeFileError, CorruptFileError: see :func:`safe_torch_load`; a readable file
        without the checkpoint layout is reported as :class:`CorruptFileError`.
    """
    state = safe_torch_load(path, map_location=map_location, what="checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CorruptFileError(f"checkpoint {path} is not a medgan_aug GAN checkpoint (format key missing)")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CorruptFileError(
            f"checkpoint {path} has version {state.get('version')!r}; this medgan_aug reads version "
            f"{CHECKPOINT_VERSION}"
        )
    return state


class PeriodicCheckpoint:
    """Save :meth:`GANTrainer.training_state` every ``every`` iterations and at the last one.

    A checkpoint off the period (the last iteration of an earlier, shorter session of a run that was
    extended) is deleted when the next one is saved, so the folder holds what a run trained to the new
    total directly holds.
    """

    def __init__(self, manager: CheckpointManager, every: int) -> None:
        self.manager, self.every = manager, every

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        it = engine.state.iteration
        if it % self.every == 0 or it >= engine.iterations:
            self.manager.save(engine.training_state(), it, superseded=self.off_period)

    def off_period(self, iteration: int) -> bool:
        """True for an iteration that is not a multiple of ``every``."""
        return iteration % self.every != 0
