"""Atomic file writes: write into a temporary file in the target's folder, then ``os.replace`` it.

A reader (or a resumed run, or another shard writing into the same folder) therefore sees either the old
file or the whole new one, never half of it. ``tempfile.mkstemp`` gives every writer its own temporary
name, so concurrent writers never share one. Checkpoints add an fsync
(:func:`medgan_aug.utils.atomic_torch_save`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["atomic_path", "atomic_write_text", "atomic_save_image", "atomic_save_figure", "write_json_atomic"]


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    Args:
        path: the final file; its folder is created if needed.
        suffix: the temporary file's suffix (default: ``path``'s), for writers that pick the format or
            append an extension by suffix (``np.savez`` adds ``.npz``, matplotlib reads ``.png``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=path.suffix if suffix is None else suffix, dir=path.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make results unreadable to other users
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_save_image(image: Image.Image, path: str | os.PathLike, **save_kwargs: Any) -> Path:
    """Save a PIL image to ``path`` atomically; the format follows the suffix (.png, .gif)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".png": "PNG", ".gif": "GIF"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported image suffix {path.suffix!r} for {path}; use .png or .gif")
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **save_kwargs)
    return path


def atomic_save_figure(fig: Any, path: str | os.PathLike, dpi: int) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` atomically: a kill never leaves half a file."""
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=True, default=json_default))


def json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
