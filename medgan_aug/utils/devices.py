"""Resolving a ``device`` option (``cpu``, ``cuda[:N]``, ``auto``) to a torch device, with a clear error."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(name: str) -> torch.device:
    """The torch device for a ``device`` option (``cpu``, ``cuda[:N]`` or ``auto``) of one process."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available")
    return device
