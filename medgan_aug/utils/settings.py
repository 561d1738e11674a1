"""Dataclass fields that document themselves: one place per setting, for the Python API and the command line.

A settings dataclass (``GANConfig``, ``ClassifierRunConfig``) declares each field with :func:`setting`; the
field's metadata is its documentation, and :mod:`medgan_aug.cli.options` turns the same fields into the
command's options. Metadata keys:

* ``help``: what the setting does (the API documentation and the ``--help`` line);
* ``group``: the ``--help`` section it is listed under;
* ``choices``: the allowed values (argparse checks them);
* ``cli``: ``False`` keeps a field off the command line (a derived or internal setting);
* ``required``: ``True`` makes the option required on the command line although the dataclass has a default;
* ``option``: the option's name where it is not the field's (``--run`` for ``gan_run``);
* ``aliases``: former option names that still parse but are not listed in ``--help``.
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
    option: str | None = None,
    aliases: Sequence[str] = (),
) -> Any:
    """A ``dataclasses.field`` carrying its help text and command-line details as metadata.

    Args:
        default: the default value; left out, the field is required.
        help: what the setting does.
        group: the ``--help`` section of its option.
        choices: the allowed values.
        cli: ``False`` if the field is not a command-line option.
        required: the option is required on the command line even though the dataclass has a default.
        option: the option's name (``--run``) where it is not derived from the field's name.
        aliases: deprecated option names that still parse, hidden from ``--help``.
    """
    metadata = {"help": help, "group": group, "choices": None if choices is None else tuple(choices)}
    metadata.update(cli=cli, required=required, option=option, aliases=tuple(aliases))
    return dataclasses.field(default=default, metadata=metadata)
