"""experiments/lowlabel_table.py copies cells from committed study summaries, and nothing else."""

from __future__ import annotations

from pathlib import Path

from engine_helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"


lowlabel_table = load_script("experiments/lowlabel_table.py")


def test_cells_are_the_summaries_own_and_the_first_study_named_wins(tmp_path):
    table = lowlabel_table.build_table(
        [
            ("subset", RESULTS / "study_nih1000_chestmnist" / "summary.md"),
            ("pool", RESULTS / "study_nih1000_lowlabel" / "summary.md"),
        ]
    )
    lines = table.splitlines()
    assert lines[0] == "| arm | 10% | 25% |"
    pool = (RESULTS / "study_nih1000_lowlabel" / "summary.md").read_text()
    question = next(line for line in lines if "pool generator vs pseudo-labels" in line)
    # the 10% cell is the summary's own row (ΔAUC and interval, then its number of study seeds)
    row = next(
        line for line in pool.splitlines() if line.startswith("| real+synthetic@0.5 vs real+pseudo@0.5")
    )
    delta, seeds = row.split(" | ")[3], row.split(" | ")[2]
    assert question.split(" | ")[1] == f"{delta} ({seeds})"
    real = next(line for line in lines if line.startswith("| `real`"))
    assert real.split(" | ")[1:] == ["0.540 ± 0.034", "0.545 ± 0.048 |"]
    # a study that lacks an arm leaves the cell saying so
    only_subset = lowlabel_table.build_table(
        [("subset", RESULTS / "study_nih1000_chestmnist" / "summary.md")]
    )
    assert "| **pool generator vs pseudo-labels** (the question) | not run | not run |" in only_subset


def test_diffusion_rows_appear_only_with_a_diffusion_study(tmp_path):
    pool = RESULTS / "study_nih1000_lowlabel" / "summary.md"
    without = lowlabel_table.build_table([("pool", pool)])
    assert "diffusion" not in without
    # a stand-in diffusion study: the pool study's summary under the diffusion label gives its own cells
    table = lowlabel_table.build_table([("pool", pool), ("diffusion", pool)])
    lines = table.splitlines()
    assert len(lines) == len(without.splitlines()) + 4
    question = next(line for line in lines if "pool generator vs pseudo-labels" in line)
    diffusion = next(line for line in lines if "diffusion model vs pseudo-labels" in line)
    assert question.split(" | ")[1:] == diffusion.split(" | ")[1:]
