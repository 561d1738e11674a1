"""The generator model file: architecture + weights + metadata, written atomically, read only through
:func:`medgan_aug.utils.serialization.safe_torch_load` (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.utils.errors import CheckpointError, GeneratorFileError
from medgan_aug.utils.serialization import atomic_torch_save, safe_torch_load

__all__ = [
    "GENERATOR_FILE",
    "resolve_generator_file",
    "check_generator_protocol",
    "GENERATOR_FORMAT",
    "GENERATOR_VERSION",
    "save_generator",
    "load_generator",
]


GENERATOR_FORMAT = "medgan_aug.generator"


GENERATOR_VERSION = 1


def _plain(value: Any, where: str) -> Any:
    """Convert meta values to weights-only-safe plain types (numpy -> lists/numbers, Path -> str)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be strings, got {k!r}")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    raise TypeError(f"{where} has a {type(value).__name__}; generator meta holds plain types only")


def save_generator(generator: DCGANGenerator, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write a self-describing generator file atomically (architecture + weights + plain meta).

    The file is a dict ``{"format": "medgan_aug.generator", "version": 1, "arch": {...}, "state_dict":
    {...}, "meta": {...}}`` readable with ``torch.load(weights_only=True)``.

    Args:
        generator: the (EMA) generator to store.
        path: destination file.
        meta: plain data about it (label_names, train_labels, flag, task, fraction, subset_seed, ...);
            numpy arrays become nested lists.

    Returns:
        The path written.
    """
    if not isinstance(generator, DCGANGenerator):
        raise TypeError(f"generator must be a DCGANGenerator, got {type(generator).__name__}")
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict or None, got {type(meta).__name__}")
    state = {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}
    payload = {
        "format": GENERATOR_FORMAT,
        "version": GENERATOR_VERSION,
        "arch": generator.arch,
        "state_dict": state,
        "meta": _plain(meta or {}, "meta"),
    }
    return atomic_torch_save(payload, path)


def load_generator(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[DCGANGenerator, dict]:
    """Load a file written by :func:`save_generator` with ``torch.load(weights_only=True)``.

    Returns:
        ``(generator, meta)`` with the generator in eval mode.

    Raises:
        FileNotFoundError: no such file.
        GeneratorFileError: corrupt/truncated, refused as unsafe, not a generator file, wrong version, or
            weights that do not fit the recorded architecture. Every message names the file.
    """
    path = Path(path)
    try:
        payload = safe_torch_load(path, map_location=map_location, what="generator file")
    except CheckpointError as err:
        raise GeneratorFileError(str(err)) from err
    if not isinstance(payload, dict) or payload.get("format") != GENERATOR_FORMAT:
        raise GeneratorFileError(
            f"{path} is not a medgan_aug generator file (expected format {GENERATOR_FORMAT!r}); "
            "make one with save_generator or `medgan-aug train`"
        )
    if payload.get("version") != GENERATOR_VERSION:
        raise GeneratorFileError(
            f"generator file {path} has version {payload.get('version')!r}; this medgan_aug reads version "
            f"{GENERATOR_VERSION}"
        )
    for key in ("arch", "state_dict"):
        if not isinstance(payload.get(key), dict):
            raise GeneratorFileError(f"generator file {path} lacks its {key!r} entry")
    try:
        generator = DCGANGenerator(**payload["arch"])
        generator.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError) as err:
        raise GeneratorFileError(
            f"generator file {path}: weights do not fit its architecture: {err}"
        ) from err
    generator.eval()
    meta = payload.get("meta") or {}
    return generator, meta


GENERATOR_FILE = "generator.pt"


def resolve_generator_file(run_dir_or_file: str | os.PathLike) -> Path:
    """``<run>/generator.pt`` for a run directory, the path itself for a file; FileNotFoundError otherwise."""
    path = Path(run_dir_or_file)
    if path.is_dir():
        path = path / GENERATOR_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"run directory {run_dir_or_file} has no {GENERATOR_FILE}: has training finished?"
            )
    elif not path.is_file():
        raise FileNotFoundError(f"generator run directory or file {run_dir_or_file} does not exist")
    return path


def check_generator_protocol(generator: Any) -> None:
    """TypeError unless ``generator`` has the medgan_aug generator protocol (callable, sizes as attributes)."""
    missing = [
        a for a in ("image_size", "latent_dim", "num_labels", "out_channels") if not hasattr(generator, a)
    ]
    if not callable(generator) or missing:
        raise TypeError(
            f"generator must be a callable module with image_size, latent_dim, num_labels and out_channels "
            f"(the medgan_aug generator protocol); {type(generator).__name__} lacks {missing or 'a __call__'}"
        )
