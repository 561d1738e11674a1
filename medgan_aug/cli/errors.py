"""One-line error messages for the command line: which errors are the user's to fix, and how to word them.

Errors medgan_aug raises on purpose (:class:`~medgan_aug.utils.errors.MedganAugError`), bad input
(``ValueError``, ``TypeError``, ``KeyError``), a diverged loss (``FloatingPointError``) and the operating
system's refusals (``OSError``: a missing file, a read-only or full disk, no permission) become one line that
names the file or argument and the cause; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import pkgutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from medgan_aug.utils.errors import MedganAugError

__all__ = ["EXPECTED_ERRORS", "one_line_message", "one_line_warnings", "quiet_engine_errors"]

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


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


@contextmanager
def one_line_warnings(command: str, enabled: bool = True) -> Iterator[None]:
    """Show each warning raised in the block as one line ``medgan-aug COMMAND: warning: MESSAGE`` on stderr
    (Python's default adds the source file, line number and code line); ``enabled=False``: unchanged."""
    if not enabled:
        yield
        return

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        print(f"medgan-aug {command}: warning: {_one_line(str(message))}", file=file or sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


class _EngineErrorEcho(logging.Filter):
    """Drops ignite's log line for an exception that ends an engine's run: the exception itself propagates
    to the command, which prints it as the one-line error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "run is terminating due to exception" not in record.getMessage()


def _engine_loggers() -> list[logging.Logger]:
    """The loggers of every ignite ``Engine`` class: the project's trainers and MONAI's, imported here because
    the commands import them only when they run (ignite names them ``ignite.engine.engine.<class name>``)."""
    from ignite.engine import Engine, engine

    from medgan_aug import engines

    for module in pkgutil.iter_modules(engines.__path__):  # the trainers the commands run (and MONAI's)
        importlib.import_module(f"{engines.__name__}.{module.name}")

    found, todo = set(), [Engine]
    while todo:
        cls = todo.pop()
        if cls.__name__ not in found:
            found.add(cls.__name__)
            todo += cls.__subclasses__()
    return [logging.getLogger(f"{engine.__name__}.{name}") for name in sorted(found)]


@contextmanager
def quiet_engine_errors() -> Iterator[None]:
    """Keep ignite's "Engine run is terminating due to exception" lines off stderr while the block runs; the
    engines' other log records (and progress bars) are unchanged."""
    echo = _EngineErrorEcho()
    loggers = _engine_loggers()
    for logger in loggers:
        logger.addFilter(echo)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(echo)
