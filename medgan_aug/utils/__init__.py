"""Shared plumbing: atomic file writes, safe torch serialisation, the exception hierarchy, devices, task names."""

from __future__ import annotations

from medgan_aug.utils.atomic import (
    DIR_MODE,
    FILE_MODE,
    atomic_dir,
    atomic_path,
    atomic_save_figure,
    atomic_save_image,
    atomic_write_text,
    publish_modes,
    write_json_atomic,
)
from medgan_aug.utils.devices import (
    PRECISIONS,
    native_bf16,
    resolve_device,
    resolve_precision,
    safe_thread_count,
)
from medgan_aug.utils.errors import (
    CheckpointError,
    CorruptFileError,
    GANDivergenceError,
    GeneratorFileError,
    InsufficientDiskSpaceError,
    MedMNISTFileError,
    ModelFileError,
    OutputNotOursError,
    ResumeError,
    TrainingDivergenceError,
    UnsafeFileError,
)
from medgan_aug.utils.files import file_md5
from medgan_aug.utils.serialization import atomic_torch_save, get_rng_states, safe_torch_load, set_rng_states
from medgan_aug.utils.settings import setting
from medgan_aug.utils.tasks import BINARY, MULTI_LABEL, TASKS, check_task, is_softmax_task
