"""An ignite handler that shows a tqdm bar over all iterations with the latest losses."""

from __future__ import annotations

import sys
from typing import Any

from ignite.engine import Engine, Events

__all__ = ["IterationProgress"]


class IterationProgress:
    """A tqdm bar over all iterations, showing the latest losses."""

    def __init__(self, total: int, initial: int) -> None:
        self.total, self.initial, self.bar = total, initial, None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.close)
        engine.add_event_handler(Events.TERMINATE, self.close)

    def __call__(self, engine: Engine) -> None:
        from tqdm.auto import tqdm

        if self.bar is None:
            tty = sys.stderr.isatty()
            self.bar = tqdm(
                total=self.total,
                initial=self.initial,
                desc="GAN",
                unit="it",
                mininterval=0.5 if tty else 30.0,
                dynamic_ncols=True,
            )
        out = engine.state.output
        self.bar.set_postfix(
            epoch=engine.state.epoch,
            loss_d=f"{out['loss_d']:.3f}",
            loss_g=f"{out['loss_g']:.3f}",
            refresh=False,
        )
        self.bar.update(1)

    def close(self, engine: Any = None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
