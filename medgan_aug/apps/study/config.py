"""The low-data augmentation study: a grid of fraction x seed x condition x classifier, run leak-free.

Protocol (written into every ``summary.md``):

* For each (fraction, seed) the training subset is ``low_data_indices(train labels, fraction, seed)``;
  subsets are nested across fractions for one seed.
* The GAN of a (fraction, seed) is trained on that subset only (its run directory records the indices),
  and the synthetic labels are resampled from that subset's label vectors only.
* Classifiers are trained for a fixed number of iterations: no early stopping and no model selection,
  so the validation split takes no part in the classifier numbers and the test split is scored once per
  run, for the reported number. (The optional generator evaluation, a diagnostic beside the study, uses
  val+test as its held-out real reference.)
* Conditions differ only in what a training batch holds (:class:`Condition`): every arm of a seed draws
  the same real batches (same items, same order) and one batch transform changes them before the step:
  classical augmentation (per-item parameters, applied to the batch at once), a share of generated images
  mixed in by :class:`medgan_aug.transforms.MixSyntheticd` (``mode="replace"``, so every condition trains
  on the same batch size for the same number of steps), MixUp or CutMix.
* Controls: a gain from generated images counts as label information only against ``real+shuffled@R``
  (the same generated images, their labels permuted among the generated items), and against the
  regularisers users already have (``real+classical``, ``real+mixup``, ``real+cutmix``).
* ``classifier_seeds`` k > 1 trains k classifiers per GAN (classifier seed k of study seed s:
  :func:`classifier_run_seed`), so the spread between GANs and between classifiers can be told apart;
  k = 0 is the study seed itself.

Every finished run leaves ``runs/<key>.json`` (its settings and metrics) and ``scores/<key>.npz`` (its
test probabilities, for the paired bootstrap), written atomically: a grid that is interrupted, sharded
(``shard=(i, n)``) or run by several processes resumes by skipping the keys already present. Processes
that share a folder take a lock per GAN and per run (:func:`study_lock`), so none trains what another is
training.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from medgan_aug.apps.study.conditions import Condition, parse_condition
from medgan_aug.apps.study.grid import (  # the grid, its keys and locks: re-exported, as before the split
    RunSpec,
    classifier_run_seed,
    data_identity,
    expand_grid,
    finished_keys,
    gan_identity,
    gan_key,
    run_key,
    select_shard,
    study_lock,
)
from medgan_aug.apps.study.sections import (
    MAX_SEED,
    SECTIONS,
    BootstrapSettings,
    ClassifierBudget,
    EvaluationSettings,
    SyntheticBudget,
    build_section,
    check_conditions,
    check_data,
    check_grid_list,
    check_pseudo_fractions,
    is_condition_name,
    is_fraction,
    is_seed,
)
from medgan_aug.apps.train import GANConfig
from medgan_aug.data.pools import POOL_LABELLED, POOL_NAMES
from medgan_aug.data.samples import sample_flag, sample_path
from medgan_aug.networks.classifiers import CLASSIFIER_NAMES
from medgan_aug.utils.validation import check_integer

#: Study configs shipped in the package (``medgan_aug/apps/study/configs/NAME.yaml``), usable by name.
PACKAGED_CONFIGS = ("quick",)

__all__ = [
    "PACKAGED_CONFIGS",
    "Condition",
    "parse_condition",
    "StudyConfig",
    "load_study_config",
    "gan_run_config",
    "RunSpec",
    "classifier_run_seed",
    "expand_grid",
    "select_shard",
    "data_identity",
    "gan_identity",
    "gan_key",
    "run_key",
    "finished_keys",
    "study_lock",
]


logger = logging.getLogger(__name__)


# The study sets these GAN settings itself, per (fraction, seed) group.
_GAN_KEYS_SET_BY_STUDY = set(
    "path sample flag root download size fraction subset_seed seed out resume tensorboard".split()
)


@dataclasses.dataclass
class StudyConfig:
    """A study grid and its budgets (loaded from YAML/JSON by :func:`load_study_config`).

    Attributes:
        name: the study's name (used in the summary).
        data: ``sample`` (a real sample shipped in the package, ``nih1000``), ``path`` (a MedMNIST-format
            file) or ``flag``/``root``/``download`` (official file); ``size``.
        fractions: training-subset fractions in (0, 1].
        seeds: seeds; seed s picks the subset, initialises the GAN and the classifier.
        conditions: condition names (:func:`parse_condition`); ``real`` is added if missing (the reference).
        classifiers: ``small_cnn`` and/or ``resnet18``.
        gan: keyword arguments of the GAN trainer's config (iterations, batch_size, ...); ``pool`` (labelled,
            train or a pool file, :mod:`medgan_aug.data.pools`) is the images the generator trains on: part of
            its key (:func:`gan_identity`) and the ``pool`` column of results.csv.
        classifier: ``iterations``, ``batch_size``, ``lr`` of classifier training.
        synthetic: ``num_samples`` generated per GAN (the cached source mixed into batches).
        bootstrap: ``n_boot`` resamples of the paired bootstrap.
        evaluation: generator evaluation of every GAN (:func:`medgan_aug.apps.write_report`):
            ``enabled`` (default true), ``num_samples``, ``repeats``, ``extractor_iterations``.
        primary: the one comparison declared before the results, e.g. ``{condition: real+synthetic@0.5,
            baseline: real, fractions: [0.1, 0.25]}`` (baseline defaults to ``real``, fractions to all,
            ``classifier`` to the first); the summary gives its verdict at 95% and calls every other
            comparison exploratory. Empty: no primary comparison. Not part of any run key.
        classifier_seeds: classifiers trained per GAN and condition (default 1): classifier seed k of
            study seed s is :func:`classifier_run_seed` ``(s, k)``; k = 0 is the study's run as it was.
        shared_gan: one generator for every (fraction, seed) group instead of one per group: trained once on
            the pool (``gan.pool``: train or a pool file) with seed 0, unconditional (``gan.conditional:
            false``), so it sees no label and nothing that depends on a group's subset; its images (drawn
            once, seed 0, kept in its folder) are labelled per run by the cell's teacher (``synthetic.labels:
            teacher``). A user with an unlabelled archive trains one such model and uses it for any labelled
            subset; the study then measures that model, and its intervals do not cover the variation between
            generator trainings. For slow generators (``model: ddpm``). Part of the GAN's key.
        device: where GANs, classifiers and evaluations run: ``cpu`` (default), ``cuda[:N]`` or ``auto``;
            under torchrun, ``cuda``/``auto`` give each process ``cuda:LOCAL_RANK``. Like the thread count
            it is not part of any key, and each run records the device it ran on (column ``device``):
            numbers differ slightly between devices, so keep one study folder on one device.
    """

    name: str = "study"
    data: dict[str, Any] = dataclasses.field(default_factory=lambda: {"flag": "chestmnist"})
    fractions: list[float] = dataclasses.field(default_factory=lambda: [0.1, 1.0])
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0, 1, 2])
    conditions: list[str] = dataclasses.field(default_factory=lambda: ["real", "real+synthetic@0.5"])
    classifiers: list[str] = dataclasses.field(default_factory=lambda: ["small_cnn"])
    gan: dict[str, Any] = dataclasses.field(default_factory=dict)
    classifier: dict[str, Any] = dataclasses.field(default_factory=dict)
    synthetic: dict[str, Any] = dataclasses.field(default_factory=dict)
    bootstrap: dict[str, Any] = dataclasses.field(default_factory=dict)
    evaluation: dict[str, Any] = dataclasses.field(default_factory=dict)
    primary: dict[str, Any] = dataclasses.field(default_factory=dict)
    classifier_seeds: int = 1
    shared_gan: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not isinstance(self.conditions, list) or not all(isinstance(c, str) for c in self.conditions):
            raise ValueError(f"conditions must be a list of condition names, got {self.conditions!r}")
        parsed = [parse_condition(c).name for c in self.conditions]
        if "real" not in parsed:
            parsed.insert(0, "real")
        self.conditions = parsed
        if not isinstance(self.data, Mapping):
            raise ValueError(f"data must be a mapping (path, sample or flag, ...), got {self.data!r}")
        self.data = dict(self.data)
        if self.data.get("sample"):
            if self.data.get("path") or self.data.get("root") or self.data.get("download"):
                raise ValueError("data: give one source, sample or path or flag/root/download")
            sample = self.data["sample"]
            self.data.setdefault("flag", sample_flag(sample))
            # the shipped file stands in for a local path: same identity (file name + MD5), same run keys
            self.data["path"] = str(sample_path(sample))
        self.validate()
        if self.primary:
            self.primary = _checked_primary(self)

    def validate(self) -> None:
        """Check every value of every section, building the objects the study builds later from them.

        Called when the config is made (so :func:`load_study_config` refuses a bad file before any work) and
        again by :func:`medgan_aug.apps.study.run_study` (a config changed after loading). Builds the
        budget sections (:mod:`medgan_aug.apps.study.sections`) and the :class:`GANConfig` of every
        (fraction, seed) group, as the runner will.

        Raises:
            ValueError: the first bad value; the message names its key (``classifier.batch_size``,
                ``seeds``, ``gan.iterations``).
        """
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.device, str) or not re.fullmatch(r"cpu|auto|cuda(:\d+)?", self.device):
            raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {self.device!r}")
        check_grid_list("fractions", self.fractions, is_fraction, "in (0, 1]")
        check_grid_list("seeds", self.seeds, is_seed, f"integers in [0, {MAX_SEED}]")
        check_grid_list("conditions", self.conditions, is_condition_name, "condition names")
        check_conditions(self.conditions)
        check_grid_list(
            "classifiers", self.classifiers, CLASSIFIER_NAMES.__contains__, f"names from {CLASSIFIER_NAMES}"
        )
        seeds = self.classifier_seeds
        check_integer("classifier_seeds", seeds, 1)
        check_data(self.data)
        for section, kind in SECTIONS.items():
            build_section(section, getattr(self, section), kind)
        if not isinstance(self.gan, Mapping):
            raise ValueError(f"gan must be a mapping of GAN settings, got {self.gan!r}")
        gan_fields = {f.name for f in dataclasses.fields(GANConfig)} - _GAN_KEYS_SET_BY_STUDY
        unknown = sorted(set(self.gan) - gan_fields, key=str)
        if unknown:
            raise ValueError(
                f"gan: unknown or study-controlled key(s) {unknown}; known: {sorted(gan_fields)}"
            )
        size = self.data.get("size") or 28
        if size not in (28, 64) and any(parse_condition(c).needs_gan for c in self.conditions):
            raise ValueError(
                f"data.size must be 28 or 64 where conditions use generated images, got {size!r}"
            )
        for fraction in self.fractions:  # the GANs the runner will configure, checked as it will check them
            for seed in self.seeds:
                try:
                    gan_run_config(self, fraction, seed, size=size if size in (28, 64) else 28, out="gans")
                except (TypeError, ValueError) as err:
                    message = str(err)
                    raise ValueError(
                        message.replace("GANConfig.", "gan.")
                        if "GANConfig." in message
                        else f"gan: {message}"
                    ) from err
        check_pseudo_fractions(self.conditions, self.fractions)
        pool = self.gan.get("pool", POOL_LABELLED)
        if pool not in POOL_NAMES and not Path(pool).is_file():  # a GANConfig checked its form above
            raise ValueError(f"gan.pool: pool file {pool} does not exist (or: labelled, train)")
        _check_shared_gan(self, pool)
        if not isinstance(self.primary, Mapping):
            raise ValueError(f"primary must be a mapping (condition, baseline, ...), got {self.primary!r}")
        if self.primary:
            _checked_primary(self)

    @property
    def classifier_budget(self) -> ClassifierBudget:
        """The ``classifier:`` section as its object (defaults filled in)."""
        return build_section("classifier", self.classifier, ClassifierBudget)

    @property
    def synthetic_budget(self) -> SyntheticBudget:
        """The ``synthetic:`` section as its object (defaults filled in)."""
        return build_section("synthetic", self.synthetic, SyntheticBudget)

    @property
    def bootstrap_settings(self) -> BootstrapSettings:
        """The ``bootstrap:`` section as its object (defaults filled in)."""
        return build_section("bootstrap", self.bootstrap, BootstrapSettings)

    @property
    def evaluation_settings(self) -> EvaluationSettings:
        """The ``evaluation:`` section as its object (defaults filled in)."""
        return build_section("evaluation", self.evaluation, EvaluationSettings)


def gan_run_config(
    config: StudyConfig,
    fraction: float,
    seed: int,
    *,
    size: int,
    out: str | os.PathLike,
    device: str | None = None,
    resume: bool = False,
) -> GANConfig:
    """The settings the study trains the GAN of group (``fraction``, ``seed``) with: the config's ``gan:``
    block, and the data, subset, seed and folder the study sets itself (with ``shared_gan``, every group's
    generator is the one of :data:`SHARED_GAN_GROUP`).

    Args:
        config: the study.
        fraction, seed: the group (the seed picks the subset and initialises the GAN).
        size: the data's image size.
        out: the GAN's run directory.
        device: where it trains (None: the config's device).
        resume: continue the run in ``out``.
    """
    if getattr(config, "shared_gan", False):
        fraction, seed = SHARED_GAN_GROUP
    data = config.data
    settings = dict(config.gan)
    settings.update(
        path=data.get("path"),
        flag=data.get("flag", "chestmnist"),
        root=data.get("root"),
        download=bool(data.get("download", False)),
        size=size,
        fraction=fraction,
        subset_seed=seed,
        seed=seed,
        out=os.fspath(out),
        progress=False,
        device=config.device if device is None else device,
        resume=resume,
    )
    return GANConfig(**settings)


def _check_shared_gan(config: StudyConfig, pool: str) -> None:
    """Refuse ``shared_gan`` where one generator could not stand for every group's (see StudyConfig)."""
    if not isinstance(config.shared_gan, bool):
        raise ValueError(f"shared_gan must be true or false, got {config.shared_gan!r}")
    if not config.shared_gan:
        return
    if pool == POOL_LABELLED:
        raise ValueError(
            "shared_gan: true needs gan.pool: train (or a pool file): a generator trained on a group's "
            "labelled subset differs between groups"
        )
    if config.gan.get("conditional", False):
        raise ValueError(
            "shared_gan: true needs gan.conditional: false: a conditional generator learns from a group's "
            "labels, so it differs between groups"
        )
    if config.synthetic_budget.labels != "teacher":
        raise ValueError(
            "shared_gan: true needs synthetic.labels: teacher (the shared generator is unconditional: the "
            "cell's teacher labels its images)"
        )


#: The group whose settings the shared generator trains with (``shared_gan``): the whole pool, seed 0.
SHARED_GAN_GROUP = (1.0, 0)


def _checked_primary(config: StudyConfig) -> dict[str, Any]:
    """``config.primary`` with its defaults filled in, or a ValueError naming the bad entry."""
    primary = dict(config.primary)
    unknown = sorted(set(primary) - {"condition", "baseline", "fractions", "classifier"})
    if unknown:
        raise ValueError(
            f"primary: unknown key(s) {unknown}; known: ['baseline', 'classifier', 'condition', 'fractions']"
        )
    primary.setdefault("baseline", "real")
    primary.setdefault("fractions", list(config.fractions))
    primary.setdefault("classifier", config.classifiers[0])
    for key in ("condition", "baseline"):
        if primary.get(key) not in config.conditions:
            raise ValueError(
                f"primary: {key} must be one of the conditions {config.conditions}, got {primary.get(key)!r}"
            )
    if primary["condition"] == primary["baseline"]:
        raise ValueError(f"primary: condition and baseline are both {primary['condition']!r}")
    fractions = primary["fractions"]
    if not isinstance(fractions, list) or not fractions or any(f not in config.fractions for f in fractions):
        raise ValueError(
            f"primary: fractions must be a non-empty list from {config.fractions}, got {fractions!r}"
        )
    if primary["classifier"] not in config.classifiers:
        raise ValueError(
            f"primary: classifier must be one of {config.classifiers}, got {primary['classifier']!r}"
        )
    return primary


_CONFIG_FIELDS = {f.name for f in dataclasses.fields(StudyConfig)}


def load_study_config(
    config_path: str | os.PathLike, *, device: str | None = None, **data_overrides: Any
) -> StudyConfig:
    """Read a study config (YAML or JSON); ``data_overrides`` (path, sample, flag, ...) replace its data entries.

    ``config_path`` is a file, or the name of a config shipped in the package (:data:`PACKAGED_CONFIGS`,
    e.g. ``"quick"``). A ``path`` or ``sample`` override replaces the config's data source; ``device``
    (not None) replaces its device.
    """
    path = Path(config_path)
    if not path.is_file() and str(config_path) in PACKAGED_CONFIGS:
        path = Path(str(resources.files("medgan_aug.apps.study").joinpath("configs", f"{config_path}.yaml")))
    if not path.is_file():
        raise FileNotFoundError(
            f"study config {path} does not exist (a file, or one of the packaged configs: "
            f"{', '.join(PACKAGED_CONFIGS)})"
        )
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"study config {path} is not valid YAML/JSON: {err}") from err
    if not isinstance(raw, dict):
        raise ValueError(f"study config {path} must hold a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - _CONFIG_FIELDS)
    if unknown:
        raise ValueError(f"study config {path}: unknown key(s) {unknown}; known: {sorted(_CONFIG_FIELDS)}")
    overrides = {k: v for k, v in data_overrides.items() if v is not None}
    data = raw.get("data") or {}
    if not isinstance(data, Mapping):
        raise ValueError(
            f"study config {path}: data must be a mapping (path, sample or flag, ...), got {data!r}"
        )
    data = dict(data)
    if "path" in overrides or "sample" in overrides:
        for key in ("path", "sample", "root", "download"):
            data.pop(key, None)
    data.update(overrides)
    raw["data"] = data
    if device is not None:
        raw["device"] = device
    try:
        return StudyConfig(**raw)
    except (TypeError, ValueError) as err:
        raise ValueError(f"study config {path}: {err}") from err
