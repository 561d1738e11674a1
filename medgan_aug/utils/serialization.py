"""Safe, atomic files for training state: write with tmp + fsync + ``os.replace``, read with ``weights_only=True``.

Everything medgan_aug writes with ``torch.save`` (GAN checkpoints, model files) goes through
:func:`atomic_torch_save`, which is :func:`medgan_aug.utils.atomic.atomic_path` (the project's one
atomic writer and permission policy: modes follow the umask) plus an fsync: a kill during a save leaves
either the old file or the new one, never a half-written file under the final name. Everything it reads goes through
:func:`safe_torch_load`, which uses ``torch.load(weights_only=True)``: the unpickler only rebuilds tensors
and plain containers, so a crafted file cannot run code. Loading errors are sorted into
:class:`UnsafeFileError` (the file asks for a Python object outside the allow-list, i.e. it is not one of
ours and may be hostile) and :class:`CorruptFileError` (truncated or unreadable).
"""

from __future__ import annotations

import errno
import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from medgan_aug.utils.atomic import atomic_path
from medgan_aug.utils.errors import CorruptFileError, UnsafeFileError

__all__ = ["atomic_torch_save", "safe_torch_load", "get_rng_states", "set_rng_states"]


#: Free space under which a failed torch write is put down to a full disk (ENOSPC) rather than EIO.
_FULL_DISK_BYTES = 1 << 20


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace`` (mode: the umask's).

    A full disk becomes ``OSError(ENOSPC)`` naming ``path`` (through
    :func:`~medgan_aug.utils.atomic.atomic_path`), not torch's ``RuntimeError`` ("enforce fail at
    inline_container.cc ... unexpected pos"): torch writes through a file object here that keeps the
    ``OSError`` its ``write`` raised, and that error is re-raised in place of torch's. A torch write error
    without one becomes ``OSError(ENOSPC, ..., path)`` when less than 1 MiB is free, else ``EIO``. Either
    way the previous file at ``path`` is kept and the temporary file removed.

    Args:
        obj: what to save (tensors, numbers, strings and containers of them).
        path: final file name; its folder is created if needed.

    Returns:
        The final path.

    Raises:
        OSError: the file could not be written (full or read-only disk, no permission); names ``path``.
    """
    with atomic_path(path, fsync=True) as tmp, open(tmp, "wb") as fh:
        sink = _KeepWriteErrors(fh)
        try:
            torch.save(obj, sink)
        except RuntimeError as err:
            if sink.error is not None:
                raise sink.error from err
            if "inline_container" not in str(err):
                raise
            code = errno.ENOSPC if shutil.disk_usage(tmp.parent).free < _FULL_DISK_BYTES else errno.EIO
            raise OSError(code, os.strerror(code), str(path)) from err
    return Path(path)


class _KeepWriteErrors:
    """A binary file for ``torch.save`` that remembers the ``OSError`` of a failed write (torch reports it as
    a ``RuntimeError`` without the cause)."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self._fh.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self._fh.flush()


def safe_torch_load(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", what: str = "file"
) -> Any:
    """``torch.load(path, weights_only=True)`` with errors that name the file and say what went wrong.

    Args:
        path: file to read.
        map_location: passed to ``torch.load``.
        what: a word for messages ("checkpoint", "generator file").

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeFileError: the pickle references globals outside the weights-only allow-list (refused,
            nothing in it is executed).
        CorruptFileError: truncated, empty, or not a torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if "Weights only load failed" in text or "Unsupported global" in text or "GLOBAL" in text:
            raise UnsafeFileError(
                f"refusing to load {what} {path}: it contains Python objects that weights-only loading "
                f"does not "
                f"allow (a file written by medgan_aug never does; it may have been crafted to run code). "
                f"torch said: {_key_line(text)}"
            ) from err
        raise CorruptFileError(f"{what} {path} is corrupt (unpickling failed: {err})") from err
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError) as err:
        raise CorruptFileError(
            f"{what} {path} is corrupt or truncated "
            f"({type(err).__name__}: {' '.join(str(err).split())[:200]})"
        ) from err


def _key_line(text: str) -> str:
    """The informative line of torch's weights-only error (which global was refused)."""
    for line in text.splitlines():
        if "Unsupported global" in line or "GLOBAL" in line:
            return line.strip()
    return text.splitlines()[0].strip() if text else "weights-only unpickling failed"


def get_rng_states() -> dict[str, Any]:
    """The global torch (CPU and CUDA), numpy and python RNG states as tensors/lists (weights-only safe)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": int(py_state[0]), "state": list(py_state[1]), "gauss_next": py_state[2]},
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_states` returned (its tensors may have been loaded onto a GPU)."""
    torch.set_rng_state(states["torch"].cpu())
    np_state = states["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].cpu().numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    py = states["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])
