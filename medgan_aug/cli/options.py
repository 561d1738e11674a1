"""Command-line options generated from a settings dataclass, so each option is written once, on its field.

A small argparse helper rather than jsonargparse: no new dependency, and the generated options keep today's
names, groups and flags (``--conditional``, ``--no-progress``) exactly. Field metadata is described in
:mod:`medgan_aug.utils.settings`.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = [
    "HelpFormatter",
    "add_config_options",
    "add_hidden_alias",
    "add_threads_option",
    "config_from_args",
    "option_fields",
    "option_name",
    "torch_threads",
]

Config = TypeVar("Config")
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def option_fields(config_cls: type) -> list[dataclasses.Field]:
    """The fields of ``config_cls`` that are command-line options (all but those with ``cli=False``)."""
    return [f for f in dataclasses.fields(config_cls) if f.metadata.get("cli", True)]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every command's ``--help`` shows a default one way, ``(default: X)``, and only where there is one: not
    for a flag (``store_true``/``store_false``: the flag's presence is the setting), not for ``None`` (the help
    text says what no value means), not for a required option or one that writes its own ``(default: ...)``."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "(default" in text
            or action.default is None
            or action.default is argparse.SUPPRESS
            or action.nargs == 0  # flags: store_true, store_false, store_const, version
            or action.required
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


def add_hidden_alias(parser: argparse._ActionsContainer, alias: str, action: argparse.Action) -> None:
    """Let ``alias`` (a former name of ``action``'s option) still parse into the same ``dest``, unlisted in
    ``--help``; it sets no default of its own."""
    kwargs: dict[str, Any] = {"dest": action.dest, "help": argparse.SUPPRESS, "default": argparse.SUPPRESS}
    if action.nargs == 0:  # a flag: the same constant
        kwargs["action"] = "store_const"
        kwargs["const"] = action.const
    else:
        kwargs.update(type=action.type, choices=action.choices, metavar=action.metavar)
    parser.add_argument(alias, **kwargs)


def add_threads_option(parser: argparse._ActionsContainer) -> None:
    """``--threads``, as ``train`` and ``classify`` have it, for a hand-written command that computes."""
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: half this machine's CPUs, at least 1)",
    )


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with torch's CPU thread count set from a ``--threads`` value (None: the default), and
    restore the previous count after it (torch is imported here, when a command runs, not for ``--help``)."""
    import torch

    from medgan_aug.utils.devices import torch_thread_count

    previous = torch.get_num_threads()
    torch.set_num_threads(torch_thread_count(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def option_name(field: dataclasses.Field) -> str:
    """``--latent-dim`` for ``latent_dim``; ``--no-progress`` for a bool that defaults to True; the field's
    ``option`` metadata where it names the option (``--run`` for ``gan_run``)."""
    if field.metadata.get("option"):
        return field.metadata["option"]
    name = field.name.replace("_", "-")
    return f"--no-{name}" if _value_type(field) is bool and field.default is True else f"--{name}"


def add_config_options(parser: argparse.ArgumentParser, config_cls: type, groups: Sequence[str] = ()) -> None:
    """Add one option per field of ``config_cls`` to ``parser``, in argument groups by ``group`` metadata.

    Args:
        parser: the (sub)command's parser.
        config_cls: a dataclass whose fields carry ``help``/``group``/``choices`` metadata.
        groups: the order of the groups in ``--help`` (others follow in the order of their first field).
    """
    by_group: dict[str | None, list[dataclasses.Field]] = {group: [] for group in groups}
    for field in option_fields(config_cls):
        by_group.setdefault(field.metadata.get("group"), []).append(field)
    for group, fields in by_group.items():
        target = parser if group is None else parser.add_argument_group(group)
        for field in fields:
            action = target.add_argument(option_name(field), dest=field.name, **_argparse_kwargs(field))
            for alias in field.metadata.get("aliases", ()):
                add_hidden_alias(target, alias, action)


def config_from_args(config_cls: type[Config], args: argparse.Namespace) -> Config:
    """The ``config_cls`` instance the parsed options describe (fields with ``cli=False`` keep defaults)."""
    return config_cls(**{f.name: getattr(args, f.name) for f in option_fields(config_cls)})


def _argparse_kwargs(field: dataclasses.Field) -> dict[str, Any]:
    value_type, meta = _value_type(field), field.metadata
    help_text = meta.get("help", "").replace("%", "%%")
    if value_type is bool:
        if field.default is True:
            return {"action": "store_false", "help": f"{help_text}; this flag turns it off"}
        return {"action": "store_true", "help": help_text}
    kwargs: dict[str, Any] = {"help": help_text, "choices": meta.get("choices")}
    if meta.get("option"):  # "--run RUN", not the field's name
        kwargs["metavar"] = meta["option"].lstrip("-").replace("-", "_").upper()
    if value_type is not str:
        kwargs["type"] = value_type
    if field.default is not dataclasses.MISSING:
        kwargs["default"] = field.default
    elif field.default_factory is not dataclasses.MISSING:
        kwargs["default"] = field.default_factory()
    kwargs["required"] = "default" not in kwargs or bool(meta.get("required"))
    if kwargs["required"]:
        kwargs.pop("default", None)  # a required option's --help shows no default
    return kwargs


def _value_type(field: dataclasses.Field) -> type:
    """int for ``int``, ``int | None`` or ``Optional[int]``, as an annotation or (``from __future__``) string;
    str for ``str`` beside a class the command line gives as a string (``str | os.PathLike``)."""
    if isinstance(field.type, str):
        text = field.type.replace("Optional[", "").replace("]", "")
        names = [part.strip() for part in text.split("|") if part.strip() != "None"]
    else:
        args = typing.get_args(field.type) or (field.type,)
        names = [getattr(a, "__name__", str(a)) for a in args if a is not type(None)]
    if "str" in names:  # str | os.PathLike, str | torch.device: given as a string on the command line
        names = [name for name in names if name == "str" or "." not in name]
    if len(names) != 1 or names[0] not in _TYPES:
        raise TypeError(f"field {field.name!r} of type {field.type!r} cannot be a command-line option")
    return _TYPES[names[0]]
