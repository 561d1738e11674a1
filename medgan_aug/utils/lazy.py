"""Lazy public names for a package's ``__init__`` (PEP 562): each name is imported from its module on first
use, so importing the package (and ``medgan-aug --help``) loads no torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]], submodules: bool = True
) -> tuple[Callable[[str], Any], list[str]]:
    """The module ``__getattr__`` of ``package`` and its sorted public names.

    Args:
        package: the package's ``__name__``.
        exports: module -> the names it provides.
        submodules: also resolve ``package.NAME`` to the submodule ``NAME`` when it is no exported name.
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(where[name]), name)
        if submodules:
            try:  # a submodule: ``package.devices`` after ``import package``
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as err:
                if err.name != f"{package}.{name}":
                    raise
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(where)
