"""One-line error messages for the command line: which errors are the user's to fix, and how to word them.

Errors medgan_aug raises on purpose (:class:`~medgan_aug.utils.errors.MedganAugError`), bad input
(``ValueError``, ``TypeError``, ``KeyError``), a diverged loss (``FloatingPointError``) and the operating
system's refusals (``OSError``: a missing file, a read-only or full disk, no permission) become one line that
names the file or argument and the cause; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import os

from medgan_aug.utils.errors import MedganAugError

__all__ = ["EXPECTED_ERRORS", "one_line_message"]

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    MedganAugError,
    ValueError,
    TypeError,
    KeyError,
    FloatingPointError,
    OSError,
)


def one_line_message(err: BaseException, args: argparse.Namespace | None = None) -> str | None:
    """The one-line message for an expected error; None for anything else (a bug: show its traceback).

    Args:
        err: the exception a command raised.
        args: the command's parsed options; ``--out`` is named when the system names no file.
    """
    if not isinstance(err, EXPECTED_ERRORS):
        return None
    if isinstance(err, OSError) and err.errno is not None:
        message = _os_error_message(err, getattr(args, "out", None))
    elif isinstance(err, KeyError) and len(err.args) == 1:
        message = str(err.args[0])  # str(KeyError) would quote the whole message
    else:
        message = str(err)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return "; ".join(lines) or type(err).__name__


def _os_error_message(err: OSError, out: str | None) -> str:
    cause = os.strerror(err.errno)
    if isinstance(err, BrokenPipeError):
        return f"standard output was closed early ({cause})"
    if err.filename is not None:
        target = _path_text(err.filename)
        if err.filename2 is not None:
            target += f" -> {_path_text(err.filename2)}"
        return f"{target}: {cause}"
    code = errno.errorcode.get(err.errno, str(err.errno))
    where = f" (the system named no file; --out is {out})" if out else ""
    return f"{cause} [{code}]{where}"


def _path_text(name: object) -> str:
    return os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else str(name)
