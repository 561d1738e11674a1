"""ignite handlers that log a run's losses per iteration: to ``losses.csv`` (trimmed past a resumed checkpoint)
or in memory."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events

from medgan_aug.utils.atomic import atomic_write_text

__all__ = ["LossCSV", "LossHistory"]


class LossCSV:
    """Append one row per iteration to ``losses.csv`` (flushed, so a killed run keeps its rows).

    Args:
        path: the CSV file.
        resume_from: the iteration a resumed run continues from (rows after it are dropped), or None.
        columns: the header; ``iteration`` and ``epoch`` first, then entries of ``engine.state.output``
            (default :attr:`COLUMNS`, the GAN's; a diffusion run passes its trainer's ``loss_columns``).
    """

    COLUMNS = (
        "iteration", "epoch", "loss_d", "loss_g", "d_real", "d_fake", "r1", "lecam", "bcr", "aux_d", "aux_g",
        "ada_p", "lr_g", "lr_d",
    )  # fmt: skip

    def __init__(self, path: Path, resume_from: int | None, columns: tuple[str, ...] | None = None) -> None:
        self.path = path
        known = self.COLUMNS if columns is None else tuple(columns)
        self.columns = known
        if resume_from is not None and path.is_file():  # drop rows past the checkpoint we resume from
            rows = path.read_text().splitlines()
            # a run started by an older version keeps its header (a subset of COLUMNS)
            self.columns = tuple(c for c in rows[0].split(",") if c in known) or known
            kept = [rows[0]] + [r for r in rows[1:] if r and int(r.split(",", 1)[0]) <= resume_from]
            atomic_write_text(path, "\n".join(kept) + "\n")
        else:
            atomic_write_text(path, ",".join(known) + "\n")
        self.fh: io.TextIOBase | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.close)
        engine.add_event_handler(Events.EXCEPTION_RAISED, self._close_and_raise)

    def __call__(self, engine: Engine) -> None:
        if self.fh is None:
            self.fh = open(self.path, "a", newline="")
        out = engine.state.output
        values = [engine.state.iteration, engine.state.epoch] + [f"{out[k]:.6g}" for k in self.columns[2:]]
        self.fh.write(",".join(map(str, values)) + "\n")
        self.fh.flush()

    def close(self, engine: Any = None) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    def _close_and_raise(self, engine: Any, err: BaseException) -> None:
        self.close()
        raise err


class LossHistory:
    """Keep ``engine.state.output[key]`` of every iteration in memory, as floats.

    Args:
        keys: the output entries to record (e.g. ``("loss",)``, or ``("loss_d", "loss_g")`` for the GAN).

    Attributes:
        history: one list per key, in iteration order.
    """

    def __init__(self, keys: tuple[str, ...] = ("loss",)) -> None:
        self.keys = tuple(keys)
        self.history: dict[str, list[float]] = {k: [] for k in self.keys}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        out = engine.state.output
        for k in self.keys:
            self.history[k].append(float(out[k]))
