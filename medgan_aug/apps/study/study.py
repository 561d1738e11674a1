"""Running a study: expand the grid, select the shard, train the groups (in one process, ``--jobs``
workers, or under ``torchrun``), evaluate the GANs and write the summary.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

from medgan_aug.apps.study.config import (
    RunSpec,
    StudyConfig,
    expand_grid,
    finished_keys,
    run_key,
    select_shard,
    study_lock,
)
from medgan_aug.apps.study.folder import check_study_folder, damaged_score_files
from medgan_aug.apps.study.runner import evaluate_gans, process_device, run_groups
from medgan_aug.apps.study.summary import write_summary
from medgan_aug.engines.distributed import distributed_context, single_process
from medgan_aug.utils.atomic import write_json_atomic
from medgan_aug.utils.locks import work_lock

__all__ = ["run_study", "torchrun_shard"]


logger = logging.getLogger(__name__)


def run_study(
    config: StudyConfig,
    out_dir: str | os.PathLike,
    *,
    shard: tuple[int, int] = (0, 1),
    jobs: int = 1,
    progress: bool = True,
) -> Path:
    """Run (or resume) the study grid into ``out_dir`` and rebuild its results.csv, summary.md, figures.

    Args:
        config: the study.
        out_dir: results folder (``runs/``, ``scores/``, ``gans/``, ``results.csv``, ``summary.md``, figures).
        shard: ``(i, n)``: run only shard i of n (whole (fraction, seed) groups); results of every shard
            that wrote into the same folder are summarised together.
        jobs: local worker processes, each taking whole groups.
        progress: show progress bars.

    Several processes may run in one ``out_dir`` at once, on the same or overlapping shards: locks per GAN
    and per run (:func:`medgan_aug.apps.study.config.study_lock`) make each train what no other process is
    training, each waits at the end for the runs the others held, and the last one to finish writes the
    summary of all of them.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the processes split the shard's groups between them
    (:func:`torchrun_shard`) and rank 0 writes the summary once every process is done.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: a bad config value (:meth:`StudyConfig.validate`), before any work.
        OutputNotOursError: ``out_dir`` holds files a study does not write
            (:func:`medgan_aug.apps.study.folder.check_study_folder`), before anything is written.
    """

    out = Path(out_dir)
    config.validate()  # a config changed after loading is checked like a loaded one, before any work
    process_device(config)  # a device this machine lacks fails here, before any work
    check_study_folder(out)  # a user's own files are never replaced: refused before anything is written
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        return _run_study_under_torchrun(config, out, shard=shard, jobs=jobs, progress=progress)
    _run_shard(config, out, shard=shard, jobs=jobs, progress=progress)
    write_summary(config, out)
    return out


def torchrun_shard(shard: tuple[int, int], rank: int, world_size: int) -> tuple[int, int]:
    """The shard that process ``rank`` of ``world_size`` runs when shard ``i`` of ``n`` is started under torchrun.

    Shard ``i + n r`` of ``n W``: the W processes split shard i/n between them (their groups are those at
    positions ``p`` with ``p mod n = i``), so ``--shard`` and ``torchrun`` combine, e.g. n array jobs of W
    processes each.
    """
    index, count = shard
    return index + count * rank, count * world_size


def _run_study_under_torchrun(
    config: StudyConfig, out: Path, *, shard: tuple[int, int], jobs: int, progress: bool
) -> Path:
    """Every torchrun process runs its own share of whole groups; rank 0 writes the summary after all.

    A (fraction, seed) group is many small, separate trainings (a GAN, then a classifier per condition),
    so processes take whole groups, each trained in one process, rather than splitting every small
    network over all of them: no communication while training, and each group's numbers are the
    one-process numbers. The process group serves only the final barrier, with a timeout of a week
    (processes that finish early wait there); a process that fails ends the others (torchrun).
    """

    with distributed_context("cpu", timeout_minutes=7 * 24 * 60) as group:
        mine = torchrun_shard(shard, group.rank, group.world_size)
        with single_process():
            _run_shard(config, out, shard=mine, jobs=jobs, progress=progress and group.is_main)
        group.barrier()
        if group.is_main:
            write_summary(config, out)
        group.barrier()
    return out


def _run_shard(config: StudyConfig, out: Path, *, shard: tuple[int, int], jobs: int, progress: bool) -> None:
    """Run the unfinished runs of ``shard`` and evaluate its GANs (results are files in ``out``).

    Other processes may work in ``out`` at the same time (the same or overlapping shards): a first pass
    skips the GANs and runs they hold (:func:`medgan_aug.apps.study.runner.run_group`), a second waits
    for their locks and runs what they left unfinished, so on return every run of the shard is finished,
    by this process or another.
    """

    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "study_config.json", dataclasses.asdict(config))
    mine = select_shard(expand_grid(config), shard)
    _forget_damaged_runs(config, mine, out)
    done = finished_keys(out)
    todo = [run for run in mine if run_key(config, run) not in done]
    skipped = len(mine) - len(todo)
    logger.info(
        "study %s: %d runs to do, %d already finished (shard %d/%d)", config.name, len(todo), skipped, *shard
    )
    started = time.perf_counter()
    run_groups(config, todo, out, jobs=jobs, progress=progress)
    done = finished_keys(out)
    held_elsewhere = [run for run in todo if run_key(config, run) not in done]
    if held_elsewhere:  # runs another process had: wait for its locks, then run what it did not finish
        logger.info(
            "study %s: waiting for %d run(s) held by other processes", config.name, len(held_elsewhere)
        )
        run_groups(config, held_elsewhere, out, jobs=jobs, progress=progress, wait=True)
    logger.info("study %s: %d runs done in %.0f s", config.name, len(todo), time.perf_counter() - started)
    evaluate_gans(config, mine, out, progress=progress)


def _forget_damaged_runs(config: StudyConfig, runs: list[RunSpec], out: Path) -> None:
    """Runs of ``runs`` whose score file cannot be read count as unfinished: their record is removed (with a
    warning naming the file), so this pass trains them again and writes both files anew.

    Each is checked again under its run's lock, so a run another process is rerunning is left to it.
    """
    for path in damaged_score_files(out, [run_key(config, run) for run in runs]):
        key = path.stem
        with work_lock(study_lock(out, f"run-{key}"), wait=True):
            if damaged_score_files(out, [key]):
                logger.warning("score file %s cannot be read: run %s is trained again", path, key)
                (out / "runs" / f"{key}.json").unlink(missing_ok=True)
