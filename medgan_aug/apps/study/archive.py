"""A study's evidence in one small file: every run's record and test scores, from which ``summary.md`` is
rebuilt, byte for byte, with nothing else (no data file, no GAN folders, no training).

A study folder holds far more than its summary needs (GAN checkpoints, samples) and is not committed; its
``summary.md`` alone cannot be checked: its intervals come from a bootstrap over per-image test scores. The
archive keeps exactly what the summary reads: the study config as written (``study_config.json``), each run's
record (``runs/<key>.json``), its test scores, targets and test patients (``scores/<key>.npz``) and the
evaluation numbers of the GANs the summary's generator table shows. Scores stay float32 as the study wrote
them (rounding them would move AUC ties and so the intervals).

A name ending in ``.json.gz`` packs the committable text form instead (:mod:`.archive_text`: per-finding
score ranks, which determine every AUC and 0.5-threshold accuracy the summary computes, a third to half of
the size); ``rebuild`` reads either.

Layout: an ``.npz`` (no pickles) with a ``meta`` member (a JSON string: format, config, records, GAN
evaluations) and per run ``scores_<i>``, ``targets_<i>`` and, where known, ``patients_<i>``, ``i`` being the
run's place in ``records``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from medgan_aug.apps.study.archive_text import TEXT_ARCHIVE_SUFFIX, read_text_archive, write_text_archive
from medgan_aug.apps.study.folder import read_scores, write_scores
from medgan_aug.apps.study.summary import GAN_EVALUATIONS_FILE, collect_runs, gan_evaluation, summarise_runs
from medgan_aug.utils.atomic import atomic_path, write_json_atomic
from medgan_aug.utils.errors import CorruptFileError

__all__ = ["ARCHIVE_FORMAT", "pack_study", "rebuild_study"]

#: Format tag of the archive's ``meta``.
ARCHIVE_FORMAT = "medgan_aug.study_archive/1"


def pack_study(out: str | os.PathLike, archive: str | os.PathLike) -> Path:
    """Write the archive of the study in ``out``: the runs its ``results.csv`` lists (those of its config).

    Args:
        out: a study folder (``study_config.json``, ``results.csv``, ``runs/``, ``scores/``).
        archive: the ``.npz`` to write, or a ``.json.gz`` for the text form (:mod:`.archive_text`).

    Raises:
        FileNotFoundError: ``out`` lacks one of those files, or the evaluation of a GAN that results.csv shows
            (its folder was deleted: pack first).
    """
    out = Path(out)
    for needed in ("study_config.json", "results.csv", "runs", "scores"):
        if not (out / needed).exists():
            raise FileNotFoundError(
                f"{out} has no {needed}: give a study folder that `medgan-aug study` wrote"
            )
    with open(out / "results.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    keys = {row["key"] for row in rows}
    evaluated = {row["key"] for row in rows if row.get("gan_fd")}  # runs whose GAN numbers the summary shows
    records = collect_runs(out, keys)
    arrays: dict[str, np.ndarray] = {}
    evaluations: dict[str, Any] = {}
    for i, record in enumerate(records):
        scores, targets, patients = read_scores(out, record["key"])
        arrays[f"scores_{i}"], arrays[f"targets_{i}"] = scores, targets
        if patients is not None:
            arrays[f"patients_{i}"] = patients
        pretrained = record.get("synthetic_pretrain_iterations", 0) > 0
        if record.get("gan_dir") and (record["synthetic_ratio"] > 0 or pretrained):
            evaluations[record["gan_dir"]] = gan_evaluation(out, record["gan_dir"])
            if record["key"] in evaluated and not evaluations[record["gan_dir"]]:
                raise FileNotFoundError(
                    f"{out / record['gan_dir'] / 'metrics.json'} is gone, but results.csv shows its generator's "
                    "evaluation: pack the study before deleting its GAN folders (the rebuilt summary would lose "
                    "its Generators table)"
                )
    meta = {
        "format": ARCHIVE_FORMAT,
        "config": json.loads((out / "study_config.json").read_text()),
        "records": records,
        "gan_evaluations": evaluations,
    }
    archive = Path(archive)
    if archive.name.endswith(TEXT_ARCHIVE_SUFFIX):
        return write_text_archive(archive, meta, arrays)
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    with atomic_path(archive) as tmp:
        np.savez_compressed(tmp, **arrays)
    return archive


def _read_archive(archive: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if archive.name.endswith(TEXT_ARCHIVE_SUFFIX):
        return read_text_archive(archive)
    try:
        with np.load(archive, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
        if meta.get("format") != ARCHIVE_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {ARCHIVE_FORMAT!r}")
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise CorruptFileError(f"{archive} is not a readable medgan_aug study archive: {err}") from err
    return meta, arrays


def rebuild_study(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Rebuild ``results.csv``, ``summary.md`` and the figures of an archived study into ``dest``.

    ``dest`` gets ``runs/``, ``scores/`` and ``gan_evaluations.json`` from the archive, then the summary is
    written as the study wrote it (:func:`medgan_aug.apps.study.summary.summarise_runs`). Returns the
    rebuilt ``summary.md``.

    Raises:
        FileNotFoundError: no such archive. CorruptFileError: not an archive of this format.
        FileExistsError: ``dest`` exists and is not empty.
    """
    archive, dest = Path(archive), Path(dest)
    meta, arrays = _read_archive(archive)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty: rebuild into a new folder")
    records = meta["records"]
    for i, record in enumerate(records):
        write_scores(
            dest, record["key"], arrays[f"scores_{i}"], arrays[f"targets_{i}"], arrays.get(f"patients_{i}")
        )
        write_json_atomic(dest / "runs" / f"{record['key']}.json", record)
    write_json_atomic(dest / GAN_EVALUATIONS_FILE, meta["gan_evaluations"])
    return summarise_runs(SimpleNamespace(**meta["config"]), dest, records)
