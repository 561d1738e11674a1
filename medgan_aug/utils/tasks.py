"""MedMNIST task names (``info['task']``) and their checks, in one place."""

from __future__ import annotations

__all__ = ["TASKS", "check_task", "is_softmax_task", "MULTI_LABEL", "BINARY"]


TASKS = ("multi-label, binary-class", "binary-class", "multi-class", "ordinal-regression")


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} (medmnist task strings), got {task!r}")
    return task


def is_softmax_task(task: str) -> bool:
    return check_task(task) in ("multi-class", "ordinal-regression")


MULTI_LABEL = "multi-label, binary-class"


BINARY = "binary-class"
