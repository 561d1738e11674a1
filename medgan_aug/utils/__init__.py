"""Shared plumbing: atomic file writes, safe torch serialisation, the exception hierarchy, devices, task names.

Names are imported lazily (PEP 562): ``medgan_aug.utils.settings``, ``.errors`` and ``.choices`` need no torch,
so the settings dataclasses and ``medgan-aug --help`` load without it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "medgan_aug.utils.atomic": [
        "DIR_MODE",
        "FILE_MODE",
        "atomic_dir",
        "atomic_path",
        "atomic_save_figure",
        "atomic_save_image",
        "atomic_write_text",
        "publish_modes",
        "write_json_atomic",
    ],
    "medgan_aug.utils.choices": ["PRECISIONS"],
    "medgan_aug.utils.devices": ["native_bf16", "resolve_device", "resolve_precision", "safe_thread_count"],
    "medgan_aug.utils.errors": [
        "CheckpointError",
        "CorruptFileError",
        "GANDivergenceError",
        "GeneratorFileError",
        "InsufficientDiskSpaceError",
        "MedMNISTFileError",
        "ModelFileError",
        "OutputNotOursError",
        "ResumeError",
        "TrainingDivergenceError",
        "UnsafeFileError",
    ],
    "medgan_aug.utils.files": ["file_md5"],
    "medgan_aug.utils.serialization": [
        "atomic_torch_save",
        "get_rng_states",
        "safe_torch_load",
        "set_rng_states",
    ],
    "medgan_aug.utils.settings": ["setting"],
    "medgan_aug.utils.tasks": ["BINARY", "MULTI_LABEL", "TASKS", "check_task", "is_softmax_task"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    try:  # a submodule: ``medgan_aug.utils.devices`` after ``import medgan_aug.utils``
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
