"""Refuse an output that cannot fit before writing any of it: sizes against ``shutil.disk_usage``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from medgan_aug.utils.errors import InsufficientDiskSpaceError

__all__ = ["format_bytes", "free_bytes", "require_free_space"]


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units for messages: ``"812.3 MiB"``, ``"1.5 GiB"``, ``"512 bytes"``."""
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            break
    return f"{value:.1f} {unit}"


def free_bytes(path: str | os.PathLike) -> int:
    """Free bytes (for this user) on the file system that holds ``path``, or would hold it once created."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return int(shutil.disk_usage(folder).free)


def require_free_space(path: str | os.PathLike, needed: int) -> None:
    """Raise unless ``needed`` bytes fit in the free space of the disk that will hold ``path``.

    Args:
        path: the output file (or folder) about to be written.
        needed: its size in bytes (including any temporary files written beside it).

    Raises:
        InsufficientDiskSpaceError: ``needed`` is more than the free space; the message names ``path`` and
            both sizes.
    """
    free = free_bytes(Path(path).parent)
    if needed > free:
        raise InsufficientDiskSpaceError(
            f"{path} would need {format_bytes(needed)} ({needed} bytes) but its disk has only "
            f"{format_bytes(free)} ({free} bytes) free; write fewer items or choose another output folder"
        )
