"""Resolving a ``device`` option (``cpu``, ``cuda[:N]``, ``auto``) to a torch device, with a clear error;
the device a module lives on; the thread count for a ``threads`` option; resolving a ``precision`` option."""

from __future__ import annotations

import itertools
import os
import warnings

import torch
from torch import nn

from medgan_aug.utils.choices import PRECISIONS
from medgan_aug.utils.validation import check_integer

__all__ = [
    "PRECISIONS",
    "resolve_device",
    "module_device",
    "usable_cpu_count",
    "safe_thread_count",
    "torch_thread_count",
    "native_bf16",
    "resolve_precision",
]


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


def usable_cpu_count() -> int:
    """The CPUs this process may run on (its affinity mask where the system has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def safe_thread_count(jobs: int = 1) -> int:
    """The default number of torch CPU threads: half the CPUs this process may use, shared by ``jobs``
    processes, at least 1.

    Why not torch's default (every core): its OpenMP threads spin while they wait for each other, so when
    anything else runs on the machine they starve (measurements: docs/performance.md, "Threads"). Half the
    cores bounds that loss on a shared machine; pass ``threads`` explicitly for a dedicated machine.
    """
    check_integer("jobs", jobs, 1)
    return max(1, usable_cpu_count() // 2 // jobs)


def torch_thread_count(threads: int | None = None, jobs: int = 1) -> int:
    """The torch CPU thread count for a ``threads`` option (``--threads``): the one place train, classify and
    study turn the option into the number given to ``torch.set_num_threads``.

    None gives :func:`safe_thread_count` ``(jobs)``. A count above the CPUs this process may use
    (:func:`usable_cpu_count`) is bounded to them, with a warning: more threads than CPUs only make
    torch's threads wait for each other, and a count such as 100000 makes OpenMP fail to start them.

    Args:
        threads: the option's value (None: the default).
        jobs: processes sharing the CPUs (for the default only).

    Raises:
        ValueError: ``threads`` is not an integer >= 1 (the message names it).
    """
    if threads is None:
        return safe_thread_count(jobs)
    check_integer("threads", threads, 1)
    cpus = usable_cpu_count()
    if threads > cpus:
        warnings.warn(
            f"threads={threads} is more than the {cpus} CPUs this process may use: using {cpus}",
            stacklevel=2,
        )
        return cpus
    return int(threads)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 matrix products natively (so bf16 autocast is a speed-up there).

    CUDA: ``torch.cuda.is_bf16_supported()``. CPU: oneDNN's own check (AVX512-BF16 or AMX); torch has no
    public function for it, so its operator ``torch.ops.mkldnn._is_mkldnn_bf16_supported`` is asked, and a
    torch without it counts as "no". Without native support bf16 autocast runs emulated and is slower than
    float32.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"fp32"`` or ``"bf16"`` for a ``precision`` option (``auto``: bf16 where :func:`native_bf16`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision
