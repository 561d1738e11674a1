"""One conversion of batch values to plain tensors, through MONAI's :func:`monai.utils.convert_to_tensor`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.utils import convert_to_tensor

__all__ = ["plain_tensor"]


def plain_tensor(x: Any, name: str = "value") -> torch.Tensor:
    """``x`` as a plain ``torch.Tensor`` sharing its memory: a MONAI ``MetaTensor`` gives its data (no
    metadata), a numpy array its tensor view.

    MONAI's ``convert_to_tensor`` also turns lists, numbers and strings into tensors; a batch value that
    is none of tensor or array is a caller's bug here, so it is refused first, with ``name`` in the error.

    Raises:
        TypeError: ``x`` is neither a tensor nor a numpy array.
    """
    if not isinstance(x, (torch.Tensor, np.ndarray)):
        raise TypeError(f"{name} must be a tensor or numpy array, got {type(x).__name__}")
    return convert_to_tensor(x, track_meta=False)
