"""Resolving a ``device`` option (``cpu``, ``cuda[:N]``, ``auto``) to a torch device, with a clear error;
the device a module lives on."""

from __future__ import annotations

import itertools

import torch
from torch import nn

__all__ = ["resolve_device", "module_device"]


def resolve_device(name: str) -> torch.device:
    """The torch device for a ``device`` option (``cpu``, ``cuda[:N]`` or ``auto``) of one process."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available")
    return device


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module without either)."""
    first = next(itertools.chain(module.parameters(), module.buffers()), None)
    return torch.device("cpu") if first is None else first.device
