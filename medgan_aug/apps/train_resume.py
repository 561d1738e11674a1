"""What ``train --resume`` checks and tidies in a run folder before a GAN run continues.

* :func:`check_run_folder`: whose the ``--out`` folder is: no run yet (missing, empty, or only temporary
  files of a run's killed writes), a GAN run, or someone else's files (refused, the first of them named).
* :func:`check_resume_record`: the saved run record (``config.json``) against the new one: same settings
  (except how and where it runs), same data file, same subset, same generator pool (by its fingerprint).
* :func:`check_iterations`: a changed ``iterations`` is allowed when the trained part is exactly the start of
  a run trained to the new total directly (the learning-rate schedule does not depend on the total, or
  nothing has been trained yet) and the new total is not below the resume point.
* :func:`remove_run_orphans`: temporary files of killed writes (:mod:`medgan_aug.utils.temp_files`).
* :func:`set_aside_generator`: an extended run's earlier ``generator.pt`` becomes ``generator_<it>.pt``,
  so a ``generator.pt`` in a run folder always belongs to the total in its ``config.json``.
* :func:`recorded_training_seconds`: the run's cumulative training seconds, as recorded at its end.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from medgan_aug.apps.train_config import GANConfig
from medgan_aug.data.pools import POOL_NAMES
from medgan_aug.handlers.checkpoint import CheckpointManager
from medgan_aug.utils.errors import OutputNotOursError, ResumeError
from medgan_aug.utils.outputs import files_under, unknown_files
from medgan_aug.utils.temp_files import orphan_temp_files, remove_orphan_temp_files

__all__ = [
    "RESUME_FREE",
    "check_run_folder",
    "settings_differences",
    "trained_precision",
    "check_resume_record",
    "check_iterations",
    "remove_run_orphans",
    "set_aside_generator",
    "recorded_training_seconds",
]


#: Settings a resumed run may change: how it runs, and where the run folder and the data file are (a moved
#: folder or a differently spelled path resumes; the data itself is checked by its MD5 and subset hash).
#: ``iterations`` is checked on its own (:func:`check_iterations`).
RESUME_FREE = (
    "resume",
    "progress",
    "tensorboard",
    "device",
    "threads",
    "out",
    "path",
    "sample",
    "root",
    "download",
)


#: Final names of the files a run writes, per sub-folder (regular expressions; checkpoints: the manager's).
_RUN_FILES = {
    ".": [r"config\.json", r"losses\.csv", r"generator\.pt", r"generator_\d{8}\.pt"],
    "samples": [r"iter_\d{8}\.png"],
}

#: The checkpoint names (:class:`~medgan_aug.handlers.checkpoint.CheckpointManager`'s ``ckpt_<it>.pt``).
_CHECKPOINT_FILES = {"checkpoints": [r"ckpt_\d{8}\.pt"]}


#: GAN settings added after runs were first written, with the value that reproduces the older behaviour
#: (a run whose config.json lacks them ran without them, whatever today's defaults are)
ADDED_SETTINGS_OFF = {
    "lecam_weight": 0.0,
    "bcr_weight": 0.0,
    "aux_weight": 0.0,
    "ada_target": 0.0,
    "ada_kimg": 100.0,
    "precision": "fp32",
    "channels_last": False,
}


def settings_differences(saved: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """The training settings in which a run's saved record (its ``config.json``) differs from ``config``
    (a ``GANConfig.to_dict()``), as ``"name: saved X vs now Y"``; :data:`RESUME_FREE`, ``iterations`` and
    ``precision`` (compare :func:`trained_precision` with the resolved one) are left out. A setting added
    after the run was written counts with its :data:`ADDED_SETTINGS_OFF` value: the run ran without it."""
    old = saved.get("config", {})
    free = (*RESUME_FREE, "iterations", "precision")
    defaults = {f.name: f.default for f in dataclasses.fields(GANConfig)} | ADDED_SETTINGS_OFF
    diff = sorted(
        k
        for k in set(old) | set(config)
        if k not in free
        and _compared(k, old.get(k, defaults.get(k))) != _compared(k, config.get(k, defaults.get(k)))
    )
    return [
        f"{k}: saved {old.get(k, defaults.get(k))!r} vs now {config.get(k, defaults.get(k))!r}" for k in diff
    ]


def _compared(name: str, value: Any) -> Any:
    """The part of a setting a resume compares: a pool file's path may move (like ``path``), its content is
    compared by the pool's fingerprint (:func:`check_resume_record`)."""
    if name == "pool" and value not in POOL_NAMES:
        return "<pool file>"
    return value


def trained_precision(saved: dict[str, Any]) -> str:
    """The precision a run trained in, from its saved record ("auto" resolves per machine, so the record's
    ``precision_used``; a run written before precision existed trained in fp32)."""
    old = saved.get("config", {})
    return saved.get("precision_used", old.get("precision", ADDED_SETTINGS_OFF["precision"]))


def _is_gan_record(path: Path) -> bool:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    config = record.get("config") if isinstance(record, dict) else None
    return isinstance(config, dict) and "latent_dim" in config and "subset" in record


def check_run_folder(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a GAN run (True) or no run yet (False); refuse anything else.

    No run yet: the folder is missing, empty, or holds only temporary files of a run's killed writes (and
    empty sub-folders): a run killed before its ``config.json`` was written. A GAN run: ``config.json`` is
    the record :func:`medgan_aug.apps.train_gan` writes; the user's other files beside it are left alone.

    Raises:
        OutputNotOursError: ``run_dir`` is a file, or a folder that holds files but no GAN run (the message
            names the first of them); nothing in it is changed.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists() and not run_dir.is_symlink():
        return False
    if not run_dir.is_dir():
        raise OutputNotOursError(f"--out {run_dir} is a file, not a folder: choose another --out")
    if (run_dir / "config.json").is_file() and _is_gan_record(run_dir / "config.json"):
        return True
    leftovers = {
        path.relative_to(run_dir).as_posix()
        for sub, targets in {**_RUN_FILES, **_CHECKPOINT_FILES}.items()
        for path in orphan_temp_files(run_dir / sub, targets)
    }
    foreign = unknown_files(files_under(run_dir), lambda name: name in leftovers)
    if foreign is None:
        return False
    raise OutputNotOursError(
        f"--out {run_dir} is not empty and holds no GAN run (no config.json of `medgan-aug train`): it "
        f"{foreign}. train writes only into a new or empty folder, or continues its own run (--resume); "
        "nothing in it was changed: choose another --out"
    )


def check_resume_record(run_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Compare ``run_dir/config.json`` with the new run ``record``; return the saved record.

    Raises:
        FileNotFoundError: no ``config.json``.
        ResumeError: it is not JSON, or a setting (other than :data:`RESUME_FREE` and ``iterations``), the
            data file's MD5, the subset or the generator pool's images differ.
    """
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"--resume: {path} not found; {run_dir} is not a GAN run directory")
    try:
        saved = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResumeError(f"--resume: {path} is not valid JSON: {err}") from err
    new = record["config"]
    details = "; ".join(settings_differences(saved, new))
    if details:
        raise ResumeError(f"--resume: the configuration differs from the run in {run_dir}: {details}")
    was = trained_precision(saved)
    if was != record.get("precision_used", new.get("precision")):
        raise ResumeError(
            f"--resume: the run in {run_dir} trained in {was} but would continue in "
            f"{record.get('precision_used')} (precision {new.get('precision')!r} on this machine); "
            f"pass --precision {was} to continue it as it started"
        )
    old_md5, new_md5 = saved.get("data", {}).get("source_md5"), record["data"]["source_md5"]
    if old_md5 is not None and old_md5 != new_md5:
        raise ResumeError(
            f"--resume: the data file {record['data']['source']} (MD5 {new_md5}) is not the one the run in "
            f"{run_dir} was trained on ({saved['data'].get('source')}, MD5 {old_md5})"
        )
    if saved.get("subset", {}).get("indices_sha256") != record["subset"]["indices_sha256"]:
        raise ResumeError(
            f"--resume: the training subset differs from the one recorded in {path} (data file changed?)"
        )
    old_pool, new_pool = saved.get("pool") or {}, record.get("pool") or {}
    if old_pool.get("images_sha256") != new_pool.get("images_sha256"):
        raise ResumeError(
            f"--resume: the generator's pool ({new_pool.get('num_images', 'the labelled subset')} images, "
            f"{new_pool.get('source') or new_pool.get('pool', 'labelled')}) differs from the one recorded in "
            f"{path} ({old_pool.get('num_images', 'the labelled subset')} images): the pool file changed?"
        )
    return saved


def check_iterations(run_dir: Path, saved: int, wanted: int, start: int, lr_schedule: str) -> None:
    """Refuse an ``iterations`` change that would not equal a run trained to ``wanted`` directly.

    Args:
        run_dir: the run folder (for messages).
        saved: the total recorded in its ``config.json``.
        wanted: the total asked for now.
        start: the iteration it resumes from (0: no checkpoint, nothing trained).
        lr_schedule: the run's learning-rate schedule.

    Raises:
        ResumeError: ``wanted`` is below ``start``, or the schedule decays over the total and training has
            started; the message says what to run instead.
    """
    if wanted == saved:
        return
    if wanted < start:
        raise ResumeError(
            f"--resume: the run in {run_dir} is at iteration {start} (its latest checkpoint); --iterations "
            f"{wanted} would end it before that. Resume with --iterations {saved}, or start a new run with "
            f"--iterations {wanted}, another --out and no --resume"
        )
    if start > 0 and lr_schedule != "constant":
        raise ResumeError(
            f"--resume: cannot change the run in {run_dir} from {saved} to {wanted} iterations: its "
            f"{lr_schedule!r} learning-rate schedule decays over the total, so the {start} iterations trained "
            f"so far used other learning rates than a {wanted}-iteration run would. Start a new run instead: "
            f"the same command with --iterations {wanted}, another --out and no --resume (or resume with "
            f"--iterations {saved}; --lr-schedule constant runs can be extended)"
        )


def remove_run_orphans(run_dir: Path, manager: CheckpointManager) -> list[Path]:
    """Delete the temporary files killed writes left in ``run_dir``, ``samples/`` and the checkpoint folder.

    Only temporary names of the files a run writes there are touched (see :mod:`medgan_aug.utils.temp_files`).

    Returns:
        The paths removed.
    """
    removed = manager.remove_orphans()
    for sub, targets in _RUN_FILES.items():
        removed += remove_orphan_temp_files(run_dir / sub, targets)
    return sorted(removed)


def set_aside_generator(run_dir: Path, iterations: int) -> Path | None:
    """Rename ``run_dir/generator.pt`` (written at ``iterations``) to ``generator_<iterations:08d>.pt``.

    Returns:
        The new path, or None when there was no ``generator.pt``.
    """
    path = run_dir / "generator.pt"
    if not path.is_file():
        return None
    aside = run_dir / f"generator_{iterations:08d}.pt"
    os.replace(path, aside)
    return aside


def recorded_training_seconds(run_dir: str | os.PathLike) -> float | None:
    """The cumulative training seconds a finished run recorded in its ``config.json`` (None: not recorded).

    The count covers every session, killed ones included, up to each session's last checkpoint: the time
    after a killed session's last checkpoint is lost with the work done in it (and is trained again).
    """
    path = Path(run_dir) / "config.json"
    try:
        value = json.loads(path.read_text()).get("training_seconds")
    except (OSError, ValueError, AttributeError):
        return None
    return None if value is None else float(value)
