"""Shared plumbing: atomic file writes, safe torch serialisation, the exception hierarchy, devices, task names.

Names are imported lazily (PEP 562): ``medgan_aug.utils.settings``, ``.errors`` and ``.choices`` need no torch,
so the settings dataclasses and ``medgan-aug --help`` load without it.
"""

from __future__ import annotations

from medgan_aug.utils.lazy import lazy_exports

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
__getattr__, _NAMES = lazy_exports(__name__, _EXPORTS)
__all__ = _NAMES


def __dir__() -> list[str]:
    return __all__
