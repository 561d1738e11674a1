"""What a study folder holds: which files are the study's own, and its per-run score files.

``medgan-aug study --out OUT`` writes into a new or empty folder, or continues the study already in it; a
folder holding anything else (a user's own ``results.csv``, ``summary.md``, notes) is refused before any
work, naming the first file the study does not write (:func:`check_study_folder`), so nothing of the
user's is replaced.

Every finished run leaves ``runs/<key>.json`` and ``scores/<key>.npz`` (its test probabilities, read by
the paired bootstrap). A score file that cannot be read (truncated, damaged on disk) is named
(:func:`read_scores`); a study started again on the folder reruns the runs whose score files are
damaged (:func:`damaged_score_files`), as if they had never finished.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from medgan_aug.utils.atomic import atomic_path
from medgan_aug.utils.errors import CorruptFileError, OutputNotOursError
from medgan_aug.utils.outputs import files_under, unknown_files
from medgan_aug.utils.temp_files import is_temp_name_of

__all__ = [
    "STUDY_FILES",
    "STUDY_FOLDERS",
    "is_study_file",
    "study_folder_problem",
    "check_study_folder",
    "scores_path",
    "write_scores",
    "read_scores",
    "damaged_score_files",
]


#: The files a study writes at the top of its folder.
STUDY_FILES = (
    "study_config.json",
    "results.csv",
    "summary.md",
    "auc_vs_fraction.png",
    "delta_auc_vs_fraction.png",
    "gan_evaluations.json",  # a study rebuilt from its archive (apps/study/archive.py)
)

#: Folders whose whole content the study writes: the GAN runs, the evaluation's extractors, the locks, the
#: cells' teachers (:mod:`medgan_aug.apps.teacher`).
STUDY_FOLDERS = ("gans", "extractors", "locks", "teachers")

# per-run files: runs/<key>.json, scores/<key>.npz
_RUN_FILES = {"runs": r"[^/]+\.json", "scores": r"[^/]+\.npz"}


def _is_temp(name: str) -> bool:
    """A temporary file of an atomic write of one of the study's files (a write killed midway leaves it)."""
    folder, _, base = name.rpartition("/")
    if not folder:
        return is_temp_name_of(base, names=STUDY_FILES)
    return folder in _RUN_FILES and is_temp_name_of(base, targets=[_RUN_FILES[folder]])


def is_study_file(name: str) -> bool:
    """Whether ``name`` (a ``/``-separated path inside a study folder) is a file the study writes there."""
    folder, _, base = name.rpartition("/")
    if name in STUDY_FILES or ("/" in name and name.split("/", 1)[0] in STUDY_FOLDERS):
        return True
    if folder in _RUN_FILES and re.fullmatch(_RUN_FILES[folder], base):
        return True
    return _is_temp(name)


def study_folder_problem(folder: str | os.PathLike) -> str | None:
    """None when ``folder`` may take a study: new, empty, or holding only a study's own files; else why not.

    Every file must be one the study writes there (:func:`is_study_file`), and its results (``results.csv``,
    ``summary.md``, the figures, ``scores/``) count as ours only beside the study's record,
    ``study_config.json`` or a run's ``runs/<key>.json``: a lone ``results.csv`` is the user's. A folder of
    only lock, temporary or GAN files (a study killed as it started) is taken as ours.
    """
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return None
    if not folder.is_dir():
        return "is a file, not a folder"
    names = files_under(folder)
    other = unknown_files(names, is_study_file, shown=1)
    if other is not None:
        return other
    marked = "study_config.json" in names or any(n.startswith("runs/") and n.endswith(".json") for n in names)
    results = [n for n in names if n in STUDY_FILES or n.startswith("scores/")]
    if marked or not results:
        return None
    return f"holds {results[0]} but no study_config.json, so it is not a folder medgan-aug study wrote"


def check_study_folder(folder: str | os.PathLike) -> None:
    """Raise unless a study may write into ``folder`` (:func:`study_folder_problem`).

    Raises:
        OutputNotOursError: ``folder`` is a file or holds files a study does not write; the message names
            the folder and the first such file.
    """
    problem = study_folder_problem(folder)
    if problem is not None:
        raise OutputNotOursError(
            f"study folder {folder} {problem}; medgan-aug study writes only into a new or empty folder or one "
            "that holds its own study, so nothing in it was changed: choose another --out or move those files"
        )


def scores_path(out: str | os.PathLike, key: str) -> Path:
    """``out/scores/<key>.npz``: the test scores of run ``key``."""
    return Path(out) / "scores" / f"{key}.npz"


def write_scores(
    out: str | os.PathLike,
    key: str,
    scores: np.ndarray,
    targets: np.ndarray,
    patients: np.ndarray | None = None,
) -> Path:
    """Write run ``key``'s test scores (float32), targets (uint8) and, if given, the test images' patient
    ids (strings), atomically; returns the file."""
    path = scores_path(out, key)
    arrays = {"scores": scores.astype(np.float32), "targets": targets.astype(np.uint8)}
    if patients is not None:
        arrays["patients"] = np.asarray(patients).astype(str)
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


# What reading a damaged .npz raises: a cut zip, a bad member, a header whose shape cannot be allocated.
_DAMAGED = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error, MemoryError)


def read_scores(out: str | os.PathLike, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Run ``key``'s ``(scores, targets, patients)``; ``patients`` (the test images' patient ids, strings) is
    None when the file has none.

    Raises:
        CorruptFileError: the file is missing, truncated or damaged, or its arrays do not pair up; the
            message names the file and says how to recompute it.
    """
    path = scores_path(out, key)
    try:
        with np.load(path, allow_pickle=False) as npz:
            scores, targets = npz["scores"], npz["targets"]
            patients = npz["patients"].astype(str) if "patients" in npz.files else None
        rows = {len(a) for a in (scores, targets, patients) if a is not None}
        if scores.ndim not in (1, 2) or len(rows) != 1 or 0 in rows:
            raise ValueError(
                f"its arrays do not pair up: scores {scores.shape}, targets {targets.shape}"
                + ("" if patients is None else f", patients {patients.shape}")
            )
    except _DAMAGED as err:
        raise CorruptFileError(
            f"score file {path} cannot be read ({type(err).__name__}: {err}); run the same medgan-aug study "
            f"command on {out} again: it reruns the runs whose score files are damaged"
        ) from err
    return scores, targets, patients


def damaged_score_files(out: str | os.PathLike, keys: Iterable[str]) -> list[Path]:
    """The score files of the finished runs ``keys`` (``runs/<key>.json`` present) that cannot be read."""
    damaged = []
    for key in keys:
        if not (Path(out) / "runs" / f"{key}.json").is_file():
            continue
        try:
            read_scores(out, key)
        except CorruptFileError:
            damaged.append(scores_path(out, key))
    return damaged
