"""The committed studies are re-derivable: each ``summary.md`` and ``results.csv`` under
``experiments/results/<study>/`` is rebuilt byte for byte from the ``scores_archive.json.gz`` beside it (run
records and per-finding test-score ranks only: no data file, no GAN folder, no training).

The archives were written by ``medgan-aug study-archive pack --archive .../scores_archive.json.gz`` after
the study runs (see each folder's COMMAND.md); this test is what ``medgan-aug study-archive rebuild --check``
does by hand.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from medgan_aug.apps.study.archive import rebuild_study

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "results"
#: the studies whose verdicts README and docs/study.md quote (the 64 px, ResNet-18 and older ones have no archive)
ARCHIVED = (
    "study_nih1000_chestmnist",
    "study_pneumoniamnist_union",
    "study_nih1000_lowlabel",
    "study_pneumoniamnist_lowlabel",
    "study_pneumoniamnist_lowlabel_subset",
    "study_pneumoniamnist_lowlabel_ddpm",
)


@pytest.mark.parametrize("study", [pytest.param(study, marks=pytest.mark.slow) for study in ARCHIVED])
def test_committed_summary_is_rebuilt_from_its_archive(tmp_path, study):
    folder = RESULTS / study
    archive = folder / "scores_archive.json.gz"
    assert archive.is_file(), f"{archive} is missing: pack it with `medgan-aug study-archive pack`"
    assert archive.stat().st_size < 512 * 1024  # small enough to commit
    rebuilt = rebuild_study(archive, tmp_path / "rebuilt")
    assert rebuilt.read_bytes() == (folder / "summary.md").read_bytes()
    assert (tmp_path / "rebuilt" / "results.csv").read_bytes() == (folder / "results.csv").read_bytes()


def test_nih1000_archive_carries_test_patients_and_the_summary_says_so():
    folder = RESULTS / "study_nih1000_chestmnist"
    with gzip.open(folder / "scores_archive.json.gz", "rt", encoding="utf-8") as fh:
        runs = json.load(fh)["runs"]
    assert runs and all(run["patients"] is not None for run in runs)  # every run's scores with their patients
    assert len(set(runs[0]["patients"])) == 53  # NIH1000's 233 test images come from 53 patients
    assert "test patients (53)" in (folder / "summary.md").read_text()
