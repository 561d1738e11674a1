"""``benchmarks/bench_vs_commit.py``: the earlier tree is exported intact and really is what gets imported.

(Its timings are benchmark output, not tested here.) The import check guards the mistake this script
once made: ``python -m`` puts the working directory ahead of ``PYTHONPATH``, so both "trees" ran this
one and the speed-up read 1.0x.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from engine_helpers import load_script

REPO = Path(__file__).resolve().parents[1]


bench_vs_commit = load_script("benchmarks/bench_vs_commit.py")


def _has_history() -> bool:
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True)
    return done.returncode == 0


@pytest.mark.skipif(not _has_history(), reason="needs the repository's git history")
def test_exported_commit_is_the_imported_tree(tmp_path):
    tree = bench_vs_commit.export_commit("HEAD", tmp_path)
    assert (tree / "medgan_aug" / "__init__.py").is_file()
    assert (tree / "medgan_aug" / "cli.py").is_file() or (tree / "medgan_aug" / "cli").is_dir()
    bench_vs_commit.check_imports_from(tree)  # passes: PYTHONPATH and the working directory both point at it


def test_a_tree_without_the_package_is_refused(tmp_path):
    with pytest.raises(SystemExit, match=re.escape(f"not from {tmp_path}")):
        bench_vs_commit.check_imports_from(tmp_path)  # medgan_aug would come from the installed copy


@pytest.mark.skipif(not _has_history(), reason="needs the repository's git history")
def test_unknown_baseline_is_named(tmp_path):
    with pytest.raises(SystemExit, match="no-such-revision"):
        bench_vs_commit.export_commit("no-such-revision", tmp_path)
