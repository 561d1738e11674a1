"""examples/quickstart.ipynb runs top to bottom (nbclient), shows its figure and results, and writes
nothing into the repository."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbclient  # dev dependencies (with ipykernel): pip install -e ".[dev]"
import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "examples" / "quickstart.ipynb"
_SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache"}


def _repo_files() -> set[str]:
    found = set()
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info")]
        found.update(str(Path(root, name).relative_to(REPO)) for name in files)
    return found


def test_notebook_is_clean_in_the_repository():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)  # committed clean


@pytest.mark.slow
def test_quickstart_runs_end_to_end(chest28_path, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDGAN_AUG_DATA", str(chest28_path.parent.resolve()))
    monkeypatch.setenv("MEDGAN_AUG_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    before, notebook_bytes = _repo_files(), NOTEBOOK.read_bytes()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    start = time.time()
    client = nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    seconds = time.time() - start
    print(f"quickstart.ipynb executed in {seconds:.1f} s")

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the sample figure is missing"
    results_cell = next(c for c in nb.cells if "results" in c.metadata.get("tags", []))
    text = "".join(o.get("text", "") for o in results_cell.outputs if o.output_type == "stream")
    results = json.loads(text.strip().splitlines()[-1])
    for key in ("real_only_auc", "mixed_auc"):
        assert 0.0 < results[key] < 1.0
    assert results["n_evaluated_labels"] == 13 and results["skipped_labels"] == ["hernia"]  # 0 test positives
    work = Path(results["work_dir"])
    assert work == tmp_path / "work" and (work / "gan" / "generator.pt").is_file()
    # nothing written into the repository (a new file, or the notebook saved with outputs)
    assert sorted(_repo_files() - before) == [] and NOTEBOOK.read_bytes() == notebook_bytes
