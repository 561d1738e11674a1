"""What the CLI commands run: train a GAN, train and score one classifier, the study, the report.

Names are imported lazily (PEP 562), so the settings dataclasses (:mod:`medgan_aug.apps.train_config`,
:mod:`medgan_aug.apps.classify_config`) load without torch for ``medgan-aug --help``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "medgan_aug.apps.classify": ["ClassifierRunConfig", "train_classifier_run"],
    "medgan_aug.apps.train": ["GANConfig", "GANSubset", "build_gan_trainer", "load_gan_subset", "train_gan"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    try:  # a submodule: ``medgan_aug.apps.study`` after ``import medgan_aug.apps``
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
