"""The sections of a study config as objects, and the checks of its grid and data, run when it loads.

Each section of a study config (``classifier:``, ``synthetic:``, ``bootstrap:``, ``evaluation:``) is a
mapping in the file and a frozen dataclass here, whose construction checks every value. The study builds
each object once when the config loads (:meth:`medgan_aug.apps.study.config.StudyConfig.validate`) and the
runner reads its budgets from the same objects, so a value that would stop the study after hours of work
(``n_boot: -1`` at the summary, ``batch_size: 0`` after the GANs) stops it before the first GAN instead,
with a line naming the key. The config keeps the mappings as written: they are what the run keys hash.
The grid's lists (fractions, seeds, conditions, classifiers) and the ``data:`` section are checked here too.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, TypeVar

from medgan_aug.apps.study.conditions import parse_condition
from medgan_aug.data.medmnist import flag_info
from medgan_aug.utils.validation import check_integer, check_real, is_integer, is_real

__all__ = [
    "MAX_SEED",
    "DATA_KEYS",
    "MEDMNIST_SIZES",
    "is_fraction",
    "is_seed",
    "is_condition_name",
    "check_grid_list",
    "check_conditions",
    "check_pseudo_fractions",
    "check_data",
    "ClassifierBudget",
    "SyntheticBudget",
    "BootstrapSettings",
    "EvaluationSettings",
    "SECTIONS",
    "build_section",
]


def _integer(section: str, name: str, value: Any, minimum: int) -> None:
    check_integer(f"{section}.{name}", value, minimum)


@dataclasses.dataclass(frozen=True)
class ClassifierBudget:
    """``classifier:``: the fixed budget of every classifier run (Adam; no early stopping).

    Attributes:
        iterations: optimiser steps (>= 1).
        batch_size: real images per step (>= 1).
        lr: Adam learning rate (a positive finite number).
    """

    iterations: int = 1000
    batch_size: int = 64
    lr: float = 1e-3

    def __post_init__(self) -> None:
        _integer("classifier", "iterations", self.iterations, 1)
        _integer("classifier", "batch_size", self.batch_size, 1)
        check_real("classifier.lr", self.lr, positive=True)


@dataclasses.dataclass(frozen=True)
class SyntheticBudget:
    """``synthetic:``: the generated images mixed into batches.

    Attributes:
        num_samples: images generated per GAN, the cached source mixed into batches (>= 1).
        labels: their labels: ``conditional`` (the generator's conditioning labels; a conditional generator)
            or ``teacher`` (the soft scores of the cell's teacher, the ``real`` arm's classifier:
            :mod:`medgan_aug.apps.teacher`; what an unconditional generator needs).
    """

    num_samples: int = 5000
    labels: str = "conditional"

    def __post_init__(self) -> None:
        _integer("synthetic", "num_samples", self.num_samples, 1)
        if self.labels not in ("conditional", "teacher"):
            raise ValueError(f"synthetic.labels must be 'conditional' or 'teacher', got {self.labels!r}")


@dataclasses.dataclass(frozen=True)
class BootstrapSettings:
    """``bootstrap:``: ``n_boot`` resamples of the paired bootstrap (>= 1)."""

    n_boot: int = 1000

    def __post_init__(self) -> None:
        _integer("bootstrap", "n_boot", self.n_boot, 1)


@dataclasses.dataclass(frozen=True)
class EvaluationSettings:
    """``evaluation:``: the generator evaluation of every GAN (:func:`medgan_aug.apps.write_report`).

    Attributes:
        enabled: evaluate the GANs (true or false).
        num_samples: generated images per evaluation (>= 20, as the report needs).
        repeats: random half splits for the distances and their floors (>= 1).
        extractor_iterations: most training steps of the in-domain extractor (>= 1).
    """

    enabled: bool = True
    num_samples: int = 500
    repeats: int = 3
    extractor_iterations: int = 1000

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"evaluation.enabled must be true or false, got {self.enabled!r}")
        _integer("evaluation", "num_samples", self.num_samples, 20)
        _integer("evaluation", "repeats", self.repeats, 1)
        _integer("evaluation", "extractor_iterations", self.extractor_iterations, 1)


#: Seeds pick subsets through ``numpy.random.RandomState``, which takes 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1

DATA_KEYS = ("download", "flag", "path", "root", "sample", "size")

MEDMNIST_SIZES = (28, 64, 128, 224)


def is_fraction(value: Any) -> bool:
    """A fraction of the training split: a number in (0, 1] (not a bool)."""
    return is_real(value) and 0 < value <= 1


def is_seed(value: Any) -> bool:
    """A study seed: an integer in [0, :data:`MAX_SEED`] (not a bool)."""
    return is_integer(value) and 0 <= value <= MAX_SEED


def is_condition_name(value: Any) -> bool:
    """A condition's canonical name (:func:`~medgan_aug.apps.study.conditions.parse_condition` raises on others)."""
    return isinstance(value, str) and parse_condition(value).name == value


def check_grid_list(key: str, values: Any, valid: Any, what: str) -> None:
    """Raise unless ``values`` is a non-empty list of values ``valid`` accepts, each listed once.

    A repeated seed or fraction would be announced as runs of its own and never done (its runs have the
    keys of the first), so it is refused, naming the key and the value.

    Args:
        key: the config key, for messages (``seeds``).
        values: the config's value.
        valid: ``value -> bool``.
        what: what valid values are, for messages (``in (0, 1]``, ``integers in [0, 4294967295]``).
    """
    if not isinstance(values, list) or not values:
        raise ValueError(f"{key} must be a non-empty list, got {values!r}")
    seen: set[Any] = set()
    for value in values:
        if not valid(value):
            raise ValueError(f"{key} must be {what}, got {value!r}")
        if value in seen:
            raise ValueError(f"{key}: {value!r} is listed twice; list each value once")
        seen.add(value)


def check_conditions(names: list[str]) -> None:
    """Raise if two names of ``names`` are one condition (``real+synthetic@0.5`` and ``real+synthetic@.5``):
    its runs would be trained twice under two names."""
    seen: dict[tuple, str] = {}
    for name in names:
        what = dataclasses.astuple(dataclasses.replace(parse_condition(name), name=""))
        if what in seen:
            raise ValueError(
                f"conditions: {name!r} is the same condition as {seen[what]!r}; list each condition once"
            )
        seen[what] = name


def check_pseudo_fractions(conditions: list[str], fractions: list[float]) -> None:
    """Refuse ``real+pseudo@R`` where a fraction is 1.0: the labelled subset is the whole training split, and
    there are no images outside it to pseudo-label."""
    pseudo = [name for name in conditions if parse_condition(name).needs_pool]
    if pseudo and any(float(f) == 1.0 for f in fractions):
        raise ValueError(
            f"conditions: {pseudo[0]} mixes in training images outside the labelled subset, and fraction 1.0 "
            "has none: drop 1.0 from fractions or the pseudo condition"
        )


def check_data(data: Mapping[str, Any]) -> None:
    """Raise unless ``data:`` names one source with known keys, a known 2D flag and a MedMNIST size."""
    if not isinstance(data, Mapping):
        raise ValueError(f"data must be a mapping (path, sample or flag, ...), got {data!r}")
    unknown = sorted(set(data) - set(DATA_KEYS), key=str)
    if unknown:
        raise ValueError(f"data: unknown key(s) {unknown}; known: {list(DATA_KEYS)}")
    if not data.get("path") and not data.get("flag"):
        raise ValueError("data needs a path (a MedMNIST-format .npz), a sample (nih1000) or a flag")
    for key in ("path", "root"):
        if data.get(key) is not None and not isinstance(data[key], (str, os.PathLike)):
            raise ValueError(f"data.{key} must be a file path, got {data[key]!r}")
    if "download" in data and not isinstance(data["download"], bool):
        raise ValueError(f"data.download must be true or false, got {data['download']!r}")
    size = data.get("size")
    if size is not None and (isinstance(size, bool) or size not in MEDMNIST_SIZES):
        raise ValueError(f"data.size must be one of {MEDMNIST_SIZES} or left out, got {size!r}")
    try:
        flag_info(data.get("flag", "chestmnist"))
    except ValueError as err:
        raise ValueError(f"data.flag: {err}") from err


#: The study config's budget sections and the objects they build.
SECTIONS: dict[str, type] = {
    "classifier": ClassifierBudget,
    "synthetic": SyntheticBudget,
    "bootstrap": BootstrapSettings,
    "evaluation": EvaluationSettings,
}

_Section = TypeVar("_Section")


def build_section(name: str, values: Mapping[str, Any] | None, kind: type[_Section]) -> _Section:
    """The object of section ``name`` (``kind``) from the config's mapping (None or empty: the defaults).

    Raises:
        ValueError: ``values`` is not a mapping, holds an unknown key, or a value the object refuses; the
            message names the section and the key.
    """
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ValueError(f"{name} must be a mapping of settings, got {type(values).__name__} {values!r}")
    known = [field.name for field in dataclasses.fields(kind)]
    unknown = sorted(set(values) - set(known), key=str)
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {unknown}; known: {sorted(known)}")
    return kind(**values)
