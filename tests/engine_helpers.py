"""Helpers shared by the test modules (imported as ``engine_helpers``: pytest puts this folder on sys.path)."""

from __future__ import annotations

from ignite.engine import Events


class StopAt:
    """A handler that terminates the engine after iteration ``n`` (simulates a run interrupted there)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED(once=self.n), lambda e: e.terminate())
