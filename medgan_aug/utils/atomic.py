"""Atomic file writes with one permission policy: every file the project writes goes through here.

A writer fills a temporary file (or folder) beside the target, and ``os.replace`` moves it into place, so
a reader (or a resumed run, or another shard writing into the same folder) sees either the old file or
the whole new one, never half of it. ``tempfile.mkstemp``/``mkdtemp`` give every writer its own
temporary name, so concurrent writers never share one.

Permissions: what the project writes is output like any other tool's, readable by everyone and
writable by its owner: files :data:`FILE_MODE` (0644), folders made here :data:`DIR_MODE` (0755),
whatever the umask or ``tempfile``'s private 0600/0700. Torch files add an fsync
(:func:`medgan_aug.utils.serialization.atomic_torch_save`).

Errors name the file being written: a full, read-only or forbidden disk often surfaces as an ``OSError``
without a file name (a failed ``write`` or ``close``) or naming the temporary file; both writers re-raise it
as the same kind of ``OSError`` naming the target (``OSError(errno, strerror, target)``), so a message can
say which file could not be written and why.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "FILE_MODE",
    "DIR_MODE",
    "publish_modes",
    "atomic_path",
    "atomic_dir",
    "atomic_write_text",
    "atomic_save_image",
    "atomic_save_figure",
    "write_json_atomic",
]


#: Mode of every file the project writes (rw-r--r--).
FILE_MODE = 0o644


#: Mode of every folder the project builds and moves into place (rwxr-xr-x).
DIR_MODE = 0o755


def publish_modes(path: str | os.PathLike) -> None:
    """Give ``path`` (a file, or a folder and everything in it) the project's modes: files 0644, folders 0755."""
    path = Path(path)
    if not path.is_dir():
        os.chmod(path, FILE_MODE)
        return
    os.chmod(path, DIR_MODE)
    for root, dirs, files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), DIR_MODE)
        for name in files:
            os.chmod(os.path.join(root, name), FILE_MODE)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (mode 0644), on error it is removed.

    Args:
        path: the final file; its folder is created if needed.
        suffix: the temporary file's extension (default: ``path``'s), for writers that pick the format or
            append an extension by it (``np.savez`` adds ``.npz``, matplotlib reads ``.png``). Temporary
            names are ``.<name>.<random>.tmp<suffix>``.
        fsync: flush the written file to disk before it replaces ``path`` (checkpoints, model files).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix if suffix is None else suffix
    with _naming(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{ext}", dir=path.parent)
    os.close(fd)
    try:
        with _naming(path):
            yield Path(tmp)
            if fsync:
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            publish_modes(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_dir(path: str | os.PathLike, may_replace: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a new empty folder beside ``path``; on success it replaces ``path``, on error it is removed.

    What the caller wrote into the folder gets the project's modes (files 0644, folders 0755). An existing
    ``path`` (file or folder) is moved aside and deleted only once the new folder is in place, so an
    interrupted write never leaves half a folder under ``path``.

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
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        with _naming(path, tmp):
            yield tmp
            publish_modes(tmp)
        if may_replace is not None and (path.exists() or path.is_symlink()):
            may_replace(path)
        aside = None
        if path.exists() or path.is_symlink():
            aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
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

    Temporary names are the ``.<name>.*`` files and folders beside ``target``; a file inside the temporary
    folder ``scratch`` is named by its place in ``target`` (``target/configs/x.json``). Errors naming any
    other file pass unchanged; the original error is kept as ``__cause__``.
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
            if where.parent == target.parent and where.name.startswith(f".{target.name}."):
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
