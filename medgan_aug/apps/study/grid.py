"""The study's grid: its runs (:class:`RunSpec`), their seeds, shards, keys and lock files.

A run's key hashes every setting that changes its result (data file by name and MD5, subset, condition,
classifier, GAN settings and pool), so a resumed study skips exactly the runs already done and a changed
setting gets new runs beside the old ones.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from medgan_aug.apps.study.conditions import parse_condition
from medgan_aug.data.medmnist import file_md5
from medgan_aug.data.pools import POOL_LABELLED, POOL_NAMES
from medgan_aug.utils.validation import check_integer


class StudyConfig(Protocol):
    """The settings of a :class:`medgan_aug.apps.study.config.StudyConfig` that the grid and its keys read
    (a protocol, so this module does not import the config module, which imports it)."""

    data: dict[str, Any]
    fractions: Sequence[float]
    seeds: Sequence[int]
    conditions: Sequence[str]
    classifiers: Sequence[str]
    classifier_seeds: int
    gan: dict[str, Any]
    classifier: dict[str, Any]
    synthetic: dict[str, Any]
    shared_gan: bool


__all__ = [
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


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One cell of the grid: a classifier trained under one condition on one (fraction, seed) subset.

    ``classifier_seed`` is the index k of the classifier of this GAN and condition (0 to
    ``classifier_seeds - 1``); its seed is :func:`classifier_run_seed` ``(seed, k)``.
    """

    fraction: float
    seed: int
    condition: str
    classifier: str
    classifier_seed: int = 0

    @property
    def group(self) -> tuple[float, int]:
        """Runs of one group share the subset and the GAN."""
        return (self.fraction, self.seed)


def classifier_run_seed(seed: int, classifier_seed: int) -> int:
    """The seed of classifier ``classifier_seed`` (k) of study seed ``seed`` (s).

    k = 0 gives s itself (the study's runs before there were several classifier seeds); k > 0 a seed
    drawn from ``numpy.random.SeedSequence([s, k])`` (31 bits), a function of (s, k) only.

    Raises:
        ValueError: ``seed`` or ``classifier_seed`` not a non-negative integer.
    """
    for arg, value in (("seed", seed), ("classifier_seed", classifier_seed)):
        check_integer(arg, value, 0)
    if classifier_seed == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(classifier_seed)]).generate_state(1)[0] >> 1)


def expand_grid(config: StudyConfig) -> list[RunSpec]:
    """Every run of the grid, in a fixed order (fraction, seed, condition, classifier, classifier seed)."""
    return [
        RunSpec(float(f), int(s), c, k, i)
        for f in config.fractions
        for s in config.seeds
        for c in config.conditions
        for k in config.classifiers
        for i in range(config.classifier_seeds)
    ]


def select_shard(runs: Sequence[RunSpec], shard: tuple[int, int]) -> list[RunSpec]:
    """The runs of shard ``i`` of ``n`` (0-based): whole (fraction, seed) groups, so no GAN is trained twice.

    The shards of ``0..n-1`` partition the grid: every run is in exactly one shard.
    """
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard must be i/n with 0 <= i < n, got {index}/{count}")
    groups = sorted({run.group for run in runs})
    mine = {g for position, g in enumerate(groups) if position % count == index}
    return [run for run in runs if run.group in mine]


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=16)
def _cached_md5(path: str, mtime_ns: int, size: int) -> str:
    return file_md5(path)


def data_identity(config: StudyConfig) -> dict[str, Any]:
    """What identifies the data: a local file by its name and MD5, an official file by flag and size.

    The MD5 is computed once per file version (path, modification time, size), not once per run key.
    """
    data = config.data
    if data.get("path"):
        path = Path(data["path"])
        if not path.is_file():
            raise FileNotFoundError(f"study data file {path} does not exist")
        stat = path.stat()
        md5 = _cached_md5(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        return {
            "file": path.name,
            "md5": md5,
            "flag": data.get("flag", "chestmnist"),
            "size": data.get("size"),
        }
    return {"flag": data["flag"], "size": data.get("size"), "official": True}


def gan_identity(config: StudyConfig) -> dict[str, Any]:
    """The GAN settings a GAN's key hashes: the ``gan:`` block, its ``pool`` as what it holds: left out when
    ``labelled`` (the default, so such GANs keep their keys), ``train``, or a pool file's name and MD5 (as
    :func:`data_identity` names the data file: a moved file keeps its GANs, a changed one gets new ones)."""
    settings = dict(config.gan)
    pool = settings.pop("pool", POOL_LABELLED)
    if pool != POOL_LABELLED:
        if pool in POOL_NAMES:
            settings["pool"] = pool
        else:
            path = Path(pool)
            if not path.is_file():
                raise FileNotFoundError(f"gan.pool: pool file {path} does not exist")
            stat = path.stat()
            md5 = _cached_md5(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
            settings["pool"] = {"file": path.name, "md5": md5}
    return settings


def gan_key(config: StudyConfig, fraction: float, seed: int) -> str:
    """Key of the GAN of a (fraction, seed) group: data, subset and GAN settings (:func:`gan_identity`);
    with ``shared_gan`` one key for every group (data and GAN settings only)."""
    if getattr(config, "shared_gan", False):
        return _digest({"data": data_identity(config), "shared": True, "gan": gan_identity(config)})
    return _digest(
        {"data": data_identity(config), "fraction": fraction, "seed": seed, "gan": gan_identity(config)}
    )


def run_key(config: StudyConfig, run: RunSpec) -> str:
    """Key of a run: every setting that changes its result (resume skips runs whose key is present).

    Classifier seed 0 leaves ``classifier_seed`` out of the key, so runs keep the keys they had before
    there were several classifier seeds.
    """
    spec = dataclasses.asdict(run)
    if run.classifier_seed == 0:
        del spec["classifier_seed"]
    payload = {"data": data_identity(config), "run": spec, "classifier": config.classifier}
    if parse_condition(run.condition).needs_gan:
        payload.update(gan=gan_key(config, run.fraction, run.seed), synthetic=config.synthetic)
    return _digest(payload)


def finished_keys(out_dir: str | os.PathLike) -> set[str]:
    """Keys of the runs that already left a result in ``out_dir/runs``."""
    runs_dir = Path(out_dir) / "runs"
    return {p.stem for p in runs_dir.glob("*.json")} if runs_dir.is_dir() else set()


def study_lock(out_dir: str | os.PathLike, name: str) -> Path:
    """The lock file of one piece of work in a study folder: ``locks/<name>.lock``.

    Taken with :func:`medgan_aug.utils.locks.work_lock`. Names: ``gan-<gan key>`` (training the GAN),
    ``run-<run key>`` (a classifier run), ``teacher-<teacher key>`` (a cell's teacher),
    ``evaluation-<gan key>`` (evaluating a GAN),
    ``extractor-<file name>`` (fitting the evaluation's extractor) and ``summary`` (results.csv,
    summary.md and the figures).
    """
    return Path(out_dir) / "locks" / f"{name}.lock"
