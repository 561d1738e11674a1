"""An ignite handler that shows a tqdm bar over a run's iterations with the latest losses."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ignite.engine import Engine, Events

__all__ = ["IterationProgress"]


class IterationProgress:
    """A tqdm bar over all iterations of a training engine, showing the epoch and the latest losses.

    The engine describes itself: ``engine.progress_label`` is the bar's label (default: the engine's class
    name), ``engine.progress_keys`` the entries of ``engine.state.output`` shown after it (default: none),
    and ``engine.iterations`` the bar's total (default: ``max_epochs * epoch_length``). Arguments given
    here take precedence. The bar starts at the iteration the engine resumes from.

    Why not ignite's ``ProgressBar``: it counts per epoch (its bar restarts every epoch) and shows the
    iteration of a resumed run from zero; runs here are counted in iterations across epochs and resume
    mid-run, so the bar needs the run's total and its starting iteration.

    Args:
        total: iterations of the whole run (None: from the engine).
        initial: iterations already done before this run (None: the engine's iteration when it starts).
        desc: the bar's label (None: ``engine.progress_label``).
        keys: output entries to show (None: ``engine.progress_keys``).
        file: where the bar is written (None: stderr, tqdm's default).
    """

    def __init__(
        self,
        total: int | None = None,
        initial: int | None = None,
        desc: str | None = None,
        keys: Sequence[str] | None = None,
        file: TextIO | None = None,
    ) -> None:
        self.total, self.initial, self.desc, self.keys, self.file = total, initial, desc, keys, file
        self.bar: Any = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.close)
        engine.add_event_handler(Events.TERMINATE, self.close)

    def _open(self, engine: Engine) -> Any:
        from tqdm.auto import tqdm

        total = self.total
        if total is None:
            total = getattr(engine, "iterations", None) or engine.state.max_epochs * engine.state.epoch_length
        tty = (self.file or sys.stderr).isatty()
        return tqdm(
            total=total,
            initial=engine.state.iteration - 1 if self.initial is None else self.initial,
            desc=self.desc or getattr(engine, "progress_label", type(engine).__name__),
            unit="it",
            mininterval=0.5 if tty else 30.0,
            dynamic_ncols=True,
            file=self.file,
        )

    def __call__(self, engine: Engine) -> None:
        if self.bar is None:
            self.bar = self._open(engine)
        out = engine.state.output
        keys = self.keys if self.keys is not None else getattr(engine, "progress_keys", ())
        values = {k: f"{float(out[k]):.4g}" for k in keys}
        self.bar.set_postfix(epoch=engine.state.epoch, **values, refresh=False)
        self.bar.update(1)

    def close(self, engine: Any = None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
