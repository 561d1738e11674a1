"""What the CLI commands run: train a GAN, train and score one classifier, the study, the report.

Names are imported lazily (PEP 562), so the settings dataclasses (:mod:`medgan_aug.apps.train_config`,
:mod:`medgan_aug.apps.classify_config`) load without torch for ``medgan-aug --help``.
"""

from __future__ import annotations

from medgan_aug.utils.lazy import lazy_exports

_EXPORTS = {
    "medgan_aug.apps.classify": ["ClassifierRunConfig", "train_classifier_run"],
    "medgan_aug.apps.train": ["GANConfig", "GANSubset", "build_gan_trainer", "load_gan_subset", "train_gan"],
}
__getattr__, _NAMES = lazy_exports(__name__, _EXPORTS)
__all__ = _NAMES


def __dir__() -> list[str]:
    return __all__
