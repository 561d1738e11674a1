"""The ``medgan-aug`` command line: a thin layer over the library's functions.

Every module in :mod:`medgan_aug.cli.commands` adds one subcommand through ``register(subparsers)``, which
sets ``func`` (``args -> exit code``) on its parser; this module only collects them.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from medgan_aug.cli import commands

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand found in :mod:`medgan_aug.cli.commands`."""
    parser = argparse.ArgumentParser(
        prog="medgan-aug",
        description="DCGAN data augmentation for MONAI: train, generate, mix, measure.",
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
        return int(args.func(args) or 0)
    except (FileNotFoundError, FileExistsError, ValueError, TypeError, *_run_errors()) as err:
        # Bad input or a run that cannot go on: the message names the file or argument and what is wrong;
        # a traceback would only bury it.
        print(f"medgan-aug {args.command}: error: {err}", file=sys.stderr)
        return 1


def _run_errors() -> tuple[type[BaseException], ...]:
    """The project's own run-time errors (unreadable checkpoints, a diverged GAN or classifier)."""
    from medgan_aug.utils.errors import CheckpointError, TrainingDivergenceError

    return (CheckpointError, TrainingDivergenceError)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
