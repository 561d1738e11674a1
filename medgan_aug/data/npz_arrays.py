"""What an ``.npz`` member declares before it is read: its array's size checked against the file and memory.

A ``.npz`` is a zip of ``.npy`` files, each a short header (dtype, shape) and the raw bytes. ``np.load``
allocates the whole declared array before reading a byte of it, so a damaged or crafted header that claims
``(10**12, 28, 28)`` fails with a ``MemoryError`` traceback (or takes the machine's memory), whatever the
file really holds. :func:`check_declared_sizes` reads only the headers and refuses, with one line that names
the file and the array, an array that declares more bytes than its zip member holds or than this machine's
available memory.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from medgan_aug.utils.disk_space import format_bytes
from medgan_aug.utils.errors import MedMNISTFileError

__all__ = ["available_memory", "declared_array", "check_declared_sizes"]


def available_memory() -> int | None:
    """Bytes of memory a new allocation can use now (Linux ``MemAvailable``, else the physical memory);
    None where the system does not say."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def declared_array(archive: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """The shape and dtype the ``.npy`` header of ``member`` declares, and the bytes of data that follow it.

    Raises:
        ValueError: the member does not start with a ``.npy`` header numpy can read.
    """
    info = archive.getinfo(member)
    with archive.open(info) as fh:
        major, _ = np.lib.format.read_magic(fh)
        reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(fh)
        header_bytes = fh.tell()
    return tuple(int(n) for n in shape), dtype, info.file_size - header_bytes


def check_declared_sizes(path: str | os.PathLike, archive: zipfile.ZipFile, keys: Iterable[str]) -> None:
    """Refuse arrays ``keys`` of the ``.npz`` at ``path`` that cannot be what their headers declare.

    Args:
        path: the file (for messages).
        archive: the open zip of the file (``np.load(path).zip``).
        keys: the arrays about to be read (``np.load``'s names: members without ``.npy``).

    Raises:
        MedMNISTFileError: an array declares more bytes than its member holds (damaged or crafted header)
            or than the memory available; the message names the file, the array, its shape and both sizes.
    """
    names = set(archive.namelist())
    memory = available_memory()
    for key in keys:
        member = f"{key}.npy" if f"{key}.npy" in names else key
        if member not in names:
            continue  # np.load names the missing array
        try:
            shape, dtype, held = declared_array(archive, member)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile):
            continue  # not a readable header: np.load says so
        needed = math.prod(shape) * dtype.itemsize
        what = f"{Path(path)}: array {key!r} declares shape {shape} {dtype} ({format_bytes(needed)})"
        if needed > held:
            raise MedMNISTFileError(
                f"{what} but the file holds {format_bytes(max(held, 0))} of its data: the header is damaged "
                "or the file is truncated; nothing was read"
            )
        if memory is not None and needed > memory:
            raise MedMNISTFileError(
                f"{what}, more than the {format_bytes(memory)} of memory available; nothing was read"
            )
