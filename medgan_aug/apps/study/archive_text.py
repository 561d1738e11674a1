"""A study archive as gzipped JSON text, small enough to commit beside the summary it rebuilds.

The ``.npz`` archive (:mod:`medgan_aug.apps.study.archive`) keeps every test score as float32: about 1 MB for
a 70-run NIH1000 study, most of it the scores' random low bits, which no number in ``summary.md`` uses. The
summary reads test scores only through AUC (the two-level bootstrap of
:func:`~medgan_aug.metrics.hierarchical_bootstrap.hierarchical_paired_bootstrap_delta`, and the per-run
numbers that come from the run records) and accuracy at the 0.5 threshold. Both are unchanged by any map of
a score column that keeps its order, its ties and which side of 0.5 each score is on: AUC is a function of
the ranks (Mann-Whitney; Hanley & McNeil 1982), and accuracy of the side. So this form keeps, per run and
finding, the dense rank of each test image's score and the number of distinct scores at or below 0.5, and
rebuilds scores from them with exactly those properties. ``tests/test_study_archive_text.py`` checks that
AUC and accuracy of every bootstrap resample are bit-identical; ``tests/test_committed_studies.py`` that the
committed summaries are rebuilt byte for byte.

Softmax (multi-class) tasks compare scores across columns (argmax), which ranks do not keep: such a study
needs the ``.npz`` archive, and packing one here is refused with that message.

Layout (``<name>.json.gz``): one JSON object, ``format``, ``config``, ``records``, ``gan_evaluations`` as
in the ``.npz`` archive's ``meta``, and ``runs``: per record, ``ranks`` (findings x images, integers),
``at_or_below_half`` (per finding), ``one_dimensional`` (the scores' shape), ``targets`` (images x
findings, 0/1) and ``patients`` (or null).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np

from medgan_aug.utils.atomic import atomic_path
from medgan_aug.utils.errors import CorruptFileError
from medgan_aug.utils.tasks import is_softmax_task

__all__ = [
    "TEXT_ARCHIVE_FORMAT",
    "TEXT_ARCHIVE_SUFFIX",
    "decode_scores",
    "encode_scores",
    "read_text_archive",
    "write_text_archive",
]

#: Format tag of the text archive.
TEXT_ARCHIVE_FORMAT = "medgan_aug.study_archive_text/1"
#: The file name ending that selects this form in ``study-archive pack`` / ``rebuild``.
TEXT_ARCHIVE_SUFFIX = ".json.gz"


def encode_scores(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``scores`` (images x findings): the dense rank of each score (0 = lowest; equal scores
    share a rank) and the number of distinct scores ``<= 0.5``. Returns ``(ranks (findings, images), counts)``."""
    scores = np.asarray(scores, dtype=np.float32).reshape(len(scores), -1)
    ranks = np.empty(scores.T.shape, dtype=np.int64)
    at_or_below = np.empty(scores.shape[1], dtype=np.int64)
    for j, column in enumerate(scores.T):
        distinct, ranks[j] = np.unique(column, return_inverse=True)
        at_or_below[j] = int(np.count_nonzero(distinct <= 0.5))
    return ranks, at_or_below


def decode_scores(ranks: np.ndarray, at_or_below: np.ndarray) -> np.ndarray:
    """Scores (images x findings, float32) with the ranks, ties and 0.5-sides that :func:`encode_scores` kept.

    Rank ``r`` of a column with ``m`` distinct scores, ``t`` of them ``<= 0.5``, becomes ``(r + 1) / (2 (m + 1))``
    below ``t`` (< 0.5) and ``0.5 + (r + 1) / (2 (m + 1))`` from ``t`` on (> 0.5): increasing in ``r``, distinct
    ranks stay distinct in float32 for any test set of fewer than a million images.
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    columns = []
    for column, below in zip(ranks, np.asarray(at_or_below, dtype=np.int64)):
        step = (column + 1) / (2.0 * (column.max() + 2))
        columns.append(np.where(column < below, step, 0.5 + step))
    return np.stack(columns, axis=1).astype(np.float32)


def write_text_archive(archive: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write ``meta`` (format, config, records, GAN evaluations) and each record's scores, targets and
    patients (``arrays``, named as in the ``.npz`` archive) as gzipped JSON.

    Raises:
        ValueError: a record of a softmax task (its scores need the ``.npz`` archive).
    """
    runs = []
    for i, record in enumerate(meta["records"]):
        if is_softmax_task(record.get("task", "")):
            raise ValueError(
                f"run {record['key']} is a {record['task']} run: its scores are compared across classes, "
                f"which the {TEXT_ARCHIVE_SUFFIX} archive (ranks per finding) does not keep; pack it as .npz"
            )
        scores = np.asarray(arrays[f"scores_{i}"])
        ranks, at_or_below = encode_scores(scores)
        patients = arrays.get(f"patients_{i}")
        runs.append(
            {
                "one_dimensional": scores.ndim == 1,
                "ranks": ranks.tolist(),
                "at_or_below_half": at_or_below.tolist(),
                "targets": np.asarray(arrays[f"targets_{i}"]).astype(int).tolist(),
                "patients": None if patients is None else [str(p) for p in patients],
            }
        )
    text = json.dumps({**meta, "format": TEXT_ARCHIVE_FORMAT, "runs": runs}, sort_keys=True)
    with atomic_path(archive) as tmp:
        # no file name and mtime 0 in the gzip header: the same study always gives the same bytes
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fh:
            fh.write(text.encode("utf-8"))
    return archive


def read_text_archive(archive: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The archive's ``meta`` and the arrays the ``.npz`` archive would hold (scores rebuilt by
    :func:`decode_scores`).

    Raises:
        FileNotFoundError: no such file. CorruptFileError: not gzipped JSON of this format.
    """
    try:
        with gzip.open(archive, "rt", encoding="utf-8") as fh:
            meta = json.load(fh)
        if meta.get("format") != TEXT_ARCHIVE_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {TEXT_ARCHIVE_FORMAT!r}")
        runs = meta.pop("runs")
        if len(runs) != len(meta["records"]):
            raise ValueError(f"{len(runs)} score entries for {len(meta['records'])} records")
        arrays: dict[str, np.ndarray] = {}
        for i, run in enumerate(runs):
            scores = decode_scores(np.array(run["ranks"]), np.array(run["at_or_below_half"]))
            arrays[f"scores_{i}"] = scores[:, 0] if run["one_dimensional"] else scores
            arrays[f"targets_{i}"] = np.array(run["targets"], dtype=np.uint8)
            if run["patients"] is not None:
                arrays[f"patients_{i}"] = np.array(run["patients"], dtype=str)
    except FileNotFoundError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError) as err:
        raise CorruptFileError(f"{archive} is not a readable medgan_aug study archive: {err}") from err
    return meta, arrays
