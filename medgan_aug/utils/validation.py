"""One place for the argument checks every module repeats: "an integer, not a bool, at least N".

``isinstance(True, int)`` is true in Python, so ``epochs=True`` would pass a bare ``isinstance`` check and
train one epoch; NumPy integers (``np.int64`` from a YAML/NPZ round trip) are not ``int`` but are fine.
These helpers encode that once, with one message shape (``"<name> must be an integer >= N, got <value>"``),
so a bad argument reads the same wherever it is caught. They raise ``ValueError`` (what the modules raised
before this file existed); callers that prefix the message with their own context pass it in ``name``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["is_integer", "is_real", "check_integer", "check_real"]


def is_integer(value: Any) -> bool:
    """True for a Python or NumPy integer; False for ``bool`` (a subclass of ``int``) and everything else."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """True for a Python or NumPy int or float (NaN and inf included); False for ``bool`` and everything else."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def check_integer(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as a Python ``int`` if it is an integer (not a bool) in ``[minimum, maximum]``.

    Raises:
        ValueError: ``"<name> must be an integer >= <minimum>, got <value!r>"`` (or ``"... between <minimum>
            and <maximum> ..."`` when ``maximum`` is given).
    """
    if not is_integer(value) or value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def check_real(name: str, value: Any, minimum: float | None = None, positive: bool = False) -> float:
    """``value`` as a finite Python ``float`` (not a bool), ``> 0`` if ``positive``, ``>= minimum`` if given.

    Raises:
        ValueError: ``"<name> must be a positive finite number, got <value!r>"`` when ``positive``, else
            ``"... must be a finite number[ >= minimum], got ..."``.
    """
    finite = is_real(value) and math.isfinite(value)
    if positive and not (finite and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if not finite:
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum}, got {value!r}")
    return float(value)
