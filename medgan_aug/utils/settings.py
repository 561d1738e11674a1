"""Dataclass fields that document themselves: one place per setting, for the Python API and the command line.

A settings dataclass (``GANConfig``, ``ClassifierRunConfig``) declares each field with :func:`setting`; the
field's metadata is its documentation, and :mod:`medgan_aug.cli.options` turns the same fields into the
command's options. Metadata keys:

* ``help``: what the setting does (the API documentation and the ``--help`` line);
* ``group``: the ``--help`` section it is listed under;
* ``choices``: the allowed values (argparse checks them);
* ``cli``: ``False`` keeps a field off the command line (a derived or internal setting);
* ``required``: ``True`` makes the option required on the command line although the dataclass has a default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

__all__ = ["setting"]


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    group: str | None = None,
    choices: Sequence[Any] | None = None,
    cli: bool = True,
    required: bool = False,
) -> Any:
    """A ``dataclasses.field`` carrying its help text and command-line details as metadata.

    Args:
        default: the default value; left out, the field is required.
        help: what the setting does.
        group: the ``--help`` section of its option.
        choices: the allowed values.
        cli: ``False`` if the field is not a command-line option.
        required: the option is required on the command line even though the dataclass has a default.
    """
    metadata = {"help": help, "group": group, "choices": None if choices is None else tuple(choices)}
    return dataclasses.field(default=default, metadata={**metadata, "cli": cli, "required": required})
