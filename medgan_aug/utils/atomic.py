"""Atomic file writes with one permission policy: every file the project writes goes through here.

A writer fills a temporary file (or folder) beside the target, and ``os.replace`` moves it into place, so
a reader (or a resumed run, or another shard writing into the same folder) sees either the old file or
the whole new one, never half of it. Every writer gets its own random temporary name
(:func:`medgan_aug.utils.temp_files.temp_name`: short, so that any legal target name can be written, and
recognisable, so that the orphan of a killed write can be removed later), so concurrent writers never
share one.

Permissions follow the umask, as ``open`` and ``mkdir`` do: temporary files are created with mode
:data:`FILE_MODE` (0666) and temporary folders with :data:`DIR_MODE` (0777), and the kernel takes away
what the process umask (or a folder's default ACL) removes -- under ``umask 022`` files are 0644 and
folders 0755, under ``umask 077`` 0600 and 0700, readable by their owner only. Nothing is chmod-ed
afterwards, so there is no umask to read and no moment at which a file has other modes than its final
ones (``tempfile.mkstemp``/``mkdtemp``, used before, create 0600/0700, which had to be widened to a fixed
0644/0755 whatever the umask). Files and folders a caller creates inside :func:`atomic_dir`'s folder with
``open``, ``mkdir``, ``np.save``, ... follow the umask the same way. :func:`publish_modes` gives the same
modes to things created otherwise (``tempfile``); it reads the umask with :func:`current_umask`. Torch
files add an fsync (:func:`medgan_aug.utils.serialization.atomic_torch_save`).

Errors name the file being written: a full, read-only or forbidden disk often surfaces as an ``OSError``
without a file name (a failed ``write`` or ``close``) or naming the temporary file; both writers re-raise it
as the same kind of ``OSError`` naming the target (``OSError(errno, strerror, target)``), so a message can
say which file could not be written and why.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medgan_aug.utils.temp_files import hold_temp_file, temp_name, temp_prefix

__all__ = [
    "FILE_MODE",
    "DIR_MODE",
    "current_umask",
    "publish_modes",
    "atomic_path",
    "atomic_dir",
    "atomic_write_text",
    "atomic_save_image",
    "atomic_save_figure",
    "write_json_atomic",
]


#: Mode every file is created with before the umask applies, as ``open`` does (rw-rw-rw-).
FILE_MODE = 0o666


#: Mode every folder is created with before the umask applies, as ``mkdir`` does (rwxrwxrwx).
DIR_MODE = 0o777


_UMASK_LOCK = threading.Lock()

# Tries at a fresh random temporary name before giving up (tempfile's own limit is 10000; 37^8 names).
_NAME_TRIES = 100


def current_umask() -> int:
    """The process umask, read without changing it where the system allows.

    Linux (4.7 and later) shows it in ``/proc/self/status`` (``Umask:`` line): reading it there changes
    nothing. Elsewhere the only way is ``os.umask``, which sets it: it is set and restored at once under a
    lock, but the umask is process-wide, so a thread of this process that creates a file in that instant
    without this lock gets umask 022.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def publish_modes(path: str | os.PathLike) -> None:
    """Give ``path`` (a file, or a folder and everything in it) the modes ``open``/``mkdir`` would have given
    it under the current umask (files ``0666 & ~umask``, folders ``0777 & ~umask``): for files made by tools
    that create private ones (``tempfile``). :func:`atomic_path` and :func:`atomic_dir` do not need it."""
    path = Path(path)
    mask = current_umask()
    file_mode, dir_mode = FILE_MODE & ~mask, DIR_MODE & ~mask
    if not path.is_dir():
        os.chmod(path, file_mode)
        return
    os.chmod(path, dir_mode)
    for root, dirs, files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), dir_mode)
        for name in files:
            os.chmod(os.path.join(root, name), file_mode)


def _create_temp_file(path: Path, ext: str) -> tuple[int, Path]:
    """Create a new temporary file for ``path`` (mode 0666 less the umask); returns its open fd and path."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_NAME_TRIES):
        tmp = path.parent / temp_name(path.name, ext)
        try:
            return os.open(tmp, flags, FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name found", str(path))


def _create_temp_dir(path: Path) -> Path:
    """Create a new temporary folder for ``path`` (mode 0777 less the umask); returns it."""
    for _ in range(_NAME_TRIES):
        tmp = path.parent / temp_name(path.name, "")
        try:
            os.mkdir(tmp, DIR_MODE)
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(errno.EEXIST, "no unused temporary name found", str(path))


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    The temporary file exists (empty) when the block starts, with the mode ``open`` gives a new file (0666
    less the umask), which the writer keeps by writing to it in place; it is held (``flock``) until it is
    moved or removed, so an orphan remover leaves it alone (:mod:`medgan_aug.utils.temp_files`).

    Args:
        path: the final file; its folder is created if needed.
        suffix: the temporary file's extension (default: ``path``'s), for writers that pick the format or
            append an extension by it (``np.savez`` adds ``.npz``, matplotlib reads ``.png``); kept when it is
            a dot and 1 to 16 characters from ``[A-Za-z0-9_-]``. Temporary names:
            :func:`medgan_aug.utils.temp_files.temp_name`.
        fsync: flush the written file to disk before it replaces ``path`` (checkpoints, model files).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _naming(path):
        fd, tmp = _create_temp_file(path, path.suffix if suffix is None else suffix)
    try:
        hold_temp_file(fd)
        with _naming(path):
            yield tmp
            if fsync:
                os.fsync(fd)
        os.replace(tmp, path)
    finally:
        os.close(fd)
        if os.path.lexists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_dir(path: str | os.PathLike, may_replace: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a new empty folder beside ``path``; on success it replaces ``path``, on error it is removed.

    The folder has the mode ``mkdir`` gives (0777 less the umask), and what the caller creates in it follows
    the umask as usual. An existing ``path`` (file or folder) is moved aside and deleted only once the new
    folder is in place, so an interrupted write never leaves half a folder under ``path``.

    Args:
        path: the final folder; its parent is created if needed.
        may_replace: called with an existing ``path`` just before it is replaced; it raises to refuse (the
            new folder is then removed and ``path`` kept). Without it whatever is at ``path`` is replaced:
            the caller decides, e.g. with :func:`medgan_aug.utils.outputs.check_output_folder`, that it is
            its own to replace.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _naming(path):
        tmp = _create_temp_dir(path)
    try:
        with _naming(path, tmp):
            yield tmp
        if may_replace is not None and (path.exists() or path.is_symlink()):
            may_replace(path)
        aside = None
        if path.exists() or path.is_symlink():
            aside = Path(tempfile.mkdtemp(prefix=f"{temp_prefix(path.name)}old-", dir=path.parent))
            os.replace(path, aside / path.name)
        os.replace(tmp, path)
        if aside is not None:
            shutil.rmtree(aside)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


@contextmanager
def _naming(target: Path, scratch: Path | None = None) -> Iterator[None]:
    """Re-raise an ``OSError`` that names no file, or a temporary file of ``target``, as one naming ``target``.

    Temporary names are those starting with ``target``'s :func:`~medgan_aug.utils.temp_files.temp_prefix`
    beside ``target``; a file inside the temporary folder ``scratch`` is named by its place in ``target``
    (``target/configs/x.json``). Errors naming any other file pass unchanged; the original error is kept as
    ``__cause__``.
    """
    try:
        yield
    except OSError as err:
        if err.errno is None:
            raise
        name = None
        if err.filename is None:
            name = target
        elif isinstance(err.filename, (str, bytes, os.PathLike)):
            where = Path(os.fsdecode(err.filename))
            if where.parent == target.parent and where.name.startswith(temp_prefix(target.name)):
                name = target
            elif scratch is not None and scratch in where.parents:
                name = target / where.relative_to(scratch)
        if name is None:
            raise
        raise OSError(err.errno, os.strerror(err.errno), str(name)) from err


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_save_image(image: Image.Image, path: str | os.PathLike, **save_kwargs: Any) -> Path:
    """Save a PIL image to ``path`` atomically; the format follows the suffix (.png, .gif)."""
    path = Path(path)
    fmt = {".png": "PNG", ".gif": "GIF"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported image suffix {path.suffix!r} for {path}; use .png or .gif")
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **save_kwargs)
    return path


def atomic_save_figure(fig: Any, path: str | os.PathLike, dpi: int) -> Path:
    """Save a matplotlib ``Figure`` to ``path`` as PNG atomically (Agg canvas, no pyplot); returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
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
