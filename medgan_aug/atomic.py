"""Atomic file writes: write into a temporary file in the target's folder, then ``os.replace`` it.

A reader (or a resumed run, or another shard writing into the same folder) therefore sees either the old
file or the whole new one, never half of it. ``tempfile.mkstemp`` gives every writer its own temporary
name, so concurrent writers never share one. Checkpoints add an fsync
(:func:`medgan_aug.checkpoint.atomic_torch_save`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text"]


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
