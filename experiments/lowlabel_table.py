"""The low-label table of README / docs/study.md (issue 21), read from committed study summaries.

Each cell is copied from a ``summary.md`` that ``medgan-aug study`` wrote (its per-fraction comparison rows:
ΔAUC, the 95% interval over study seeds and test images or patients, the number of study seeds), so the
table can only say what the studies say. One row per arm, one column per fraction; where two studies
hold the same (arm, fraction), the first one named wins (``--study`` may repeat a label). ``real`` gives
the absolute AUC (mean ± sd over study seeds) for scale.

    python experiments/lowlabel_table.py \\
        --study subset=experiments/results/study_pneumoniamnist_lowlabel_subset/summary.md \\
        --study subset=experiments/results/study_pneumoniamnist_union/summary.md \\
        --study pool=experiments/results/study_pneumoniamnist_lowlabel/summary.md
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

#: (row title, the studies it is read from in order, the comparison as the summary names it)
ROWS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("`real` (AUC, mean ± sd)", ("pool", "subset"), "real"),
    ("generator on the labelled subset, own labels, vs `real`", ("subset",), "real+synthetic@0.5 vs real"),
    ("… its placebo (labels permuted) vs `real`", ("subset",), "real+shuffled@0.5 vs real"),
    ("generator on the pool, teacher labels, vs `real`", ("pool",), "real+synthetic@0.5 vs real"),
    ("… its placebo (labels permuted) vs `real`", ("pool",), "real+shuffled@0.5 vs real"),
    ("pseudo-labelled real pool images vs `real`", ("pool",), "real+pseudo@0.5 vs real"),
    (
        "synthetic pretraining (pool generator), then real, vs `real`",
        ("pool",),
        "synthetic-pretrain+real vs real",
    ),
    (
        "**pool generator vs pseudo-labels** (the question)",
        ("pool",),
        "real+synthetic@0.5 vs real+pseudo@0.5",
    ),
    # a study with shared_gan and model: ddpm (issue 22): rows shown only where such a study is named
    ("one diffusion model on the pool (shared), teacher labels, vs `real`", ("diffusion",), "real+synthetic@0.5 vs real"),
    ("… its placebo (labels permuted) vs `real`", ("diffusion",), "real+shuffled@0.5 vs real"),
    ("synthetic pretraining (diffusion model), then real, vs `real`", ("diffusion",), "synthetic-pretrain+real vs real"),
    ("**diffusion model vs pseudo-labels**", ("diffusion",), "real+synthetic@0.5 vs real+pseudo@0.5"),
)  # fmt: skip

#: the labels ``--study`` takes: the generator saw the labelled subset, the pool, or (one shared diffusion
#: model) the pool
LABELS = ("subset", "pool", "diffusion")

_SECTION = re.compile(r"^## Fraction ([0-9.]+) \((\d+) training images\)")


def read_summary(path: Path) -> dict[tuple[str, str], str]:
    """``{(fraction, comparison or condition): cell}`` from one summary.md's per-fraction tables."""
    cells: dict[tuple[str, str], str] = {}
    fraction = None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _SECTION.match(line)
        if match:
            fraction = match.group(1)
            continue
        if line.startswith("## "):
            fraction = None
        if fraction is None or not line.startswith("| "):
            continue
        parts = [part.strip() for part in line.strip("|").split("|")]
        name = re.sub(r" \((in the primary|placebo)\)$", "", parts[0])
        if len(parts) == 5 and parts[1] != "classifier":  # condition table: AUC mean ± sd
            cells[(fraction, name)] = parts[3]
        elif len(parts) >= 11 and " vs " in name:  # comparison table: ΔAUC [CI]
            cells[(fraction, name)] = f"{parts[3]} ({parts[2]})"
    return cells


def build_table(studies: list[tuple[str, Path]]) -> str:
    """The Markdown table over every fraction any of ``studies`` ((label, summary.md), in order) holds."""
    read = [(label, read_summary(path)) for label, path in studies]
    fractions = sorted({f for _, cells in read for f, _ in cells}, key=float)
    lines = [
        "| arm | " + " | ".join(f"{float(f) * 100:g}%" for f in fractions) + " |",
        "|---|" + "---|" * len(fractions),
    ]
    labels = {label for label, _ in studies}
    for title, sources, name in ROWS:
        if "diffusion" in sources and "diffusion" not in labels:
            continue  # the diffusion rows only where a diffusion study is named
        row = []
        for fraction in fractions:
            cell = next(
                (
                    cells[(fraction, name)]
                    for source in sources
                    for label, cells in read
                    if label == source and (fraction, name) in cells
                ),
                "not run",
            )
            row.append(cell)
        lines.append(f"| {title} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--study",
        action="append",
        required=True,
        help="LABEL=summary.md, LABEL subset (the generator saw the labelled subset), pool, or diffusion (one "
        "shared diffusion model on the pool); repeat a label to add fractions, the first named wins",
    )
    args = parser.parse_args()
    studies = []
    for item in args.study:
        label, _, path = item.partition("=")
        if label not in LABELS or not path:
            parser.error(f"--study {item!r}: give LABEL=PATH with LABEL one of {', '.join(LABELS)}")
        if not Path(path).is_file():
            parser.error(f"--study {item!r}: {path} is not a file")
        studies.append((label, Path(path)))
    print(build_table(studies), end="")


if __name__ == "__main__":
    main()
