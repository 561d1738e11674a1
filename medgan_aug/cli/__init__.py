"""The ``medgan-aug`` command line: a thin layer over the library's functions.

Every module in :mod:`medgan_aug.cli.commands` adds one subcommand through ``register(subparsers)``, which
sets ``func`` (``args -> exit code``) on its parser; this module only collects them and turns the errors a
user can fix into one line on stderr, warnings into one line each (``medgan-aug COMMAND: warning: ...``, no
source line), and keeps ignite's "Engine run is terminating due to exception" log lines from repeating the
error before it (:mod:`medgan_aug.cli.errors`).

Building the parser imports no torch (nor MONAI, ignite, the metrics): each command imports what it runs
inside its ``run_*`` function, so ``medgan-aug --help`` and ``medgan-aug COMMAND --help`` answer at once. Every
command's help shows defaults one way (:class:`~medgan_aug.cli.options.HelpFormatter`).

Exit codes: 0 done, 1 an error with a one-line message, 2 a usage error (argparse), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from medgan_aug.cli import commands
from medgan_aug.cli.errors import one_line_message, one_line_warnings, quiet_engine_errors
from medgan_aug.cli.options import HelpFormatter

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help is :class:`HelpFormatter`'s; its subcommands' parsers are of this class
    too (argparse makes subparsers of the parent's class), so every command's ``--help`` looks the same."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand found in :mod:`medgan_aug.cli.commands`."""
    parser = _Parser(
        prog="medgan-aug",
        description="Generated chest X-rays for MONAI (DCGAN or diffusion): train, generate, mix, measure.",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback of an error instead of one line"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not module_info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{module_info.name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``medgan-aug``; returns the exit code (0 on success)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        with one_line_warnings(args.command, enabled=not args.traceback), quiet_engine_errors():
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe (``| head``) shows here, not as a warning at exit
        return code
    except KeyboardInterrupt:
        print(f"medgan-aug {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        message = one_line_message(err, args)
        if message is None or args.traceback:
            raise  # a bug, or asked for: the traceback is the useful part
        if isinstance(err, BrokenPipeError):
            _silence_stdout()
        _print_error(args.command, message)
        return 1


def _print_error(command: str, message: str) -> None:
    print(f"medgan-aug {command}: error: {message}", file=sys.stderr)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
