"""``--pretrained NAME``: a generator shipped in the package (:mod:`medgan_aug.data.pretrained`) where a command
reads a generator run folder with ``--run``.

Torch-free at import, like every option builder, so ``--help`` stays instant: the names are listed here and
checked against the registry by the tests; the registry itself is imported when the command runs.
"""

from __future__ import annotations

import argparse

__all__ = ["PRETRAINED_NAMES", "add_pretrained_option", "generator_source"]

#: The names of :data:`medgan_aug.data.pretrained.PRETRAINED` (a test keeps the two equal).
PRETRAINED_NAMES = ("nih1000", "pneumoniamnist")


def add_pretrained_option(parser: argparse._ActionsContainer) -> None:
    """Add ``--pretrained NAME`` (no choices: an unknown name gets the registry's one-line error)."""
    parser.add_argument(
        "--pretrained",
        metavar="NAME",
        help=f"a generator shipped in the package instead of --run: {', '.join(PRETRAINED_NAMES)} (trained on "
        "every training image of its data set: not for a low-data study on that data; see its model card)",
    )


def generator_source(run: str | None, pretrained: str | None, required: bool = True) -> str | None:
    """The generator a command reads: ``run`` as given, or the MD5-checked file of ``pretrained``.

    Raises:
        ValueError: both given, or neither while ``required``; an unknown pretrained name.
        ModelFileError: the packaged file is missing or altered.
    """
    if run is not None and pretrained is not None:
        raise ValueError(f"--run {run} and --pretrained {pretrained} both name a generator: give one")
    if pretrained is None:
        if run is None and required:
            raise ValueError("give the generator: --run RUN_FOLDER or --pretrained NAME")
        return run
    from medgan_aug.data.pretrained import pretrained_path  # torch: only when the command runs

    return str(pretrained_path(pretrained))
