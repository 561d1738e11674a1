"""Train, pack and report the pretrained generators shipped in ``medgan_aug/data/pretrained_files``.

Each is the default recipe (``medgan-aug train --conditional``, every other option at its default) on the whole
training split, for the 15-minute budget of the recipe ablation (10,975 iterations,
``experiments/results/recipe_ablation``). Steps, from the repository root::

    python experiments/pretrained_generators.py train --name nih1000 --runs runs/pretrained
    python experiments/pretrained_generators.py pack --name nih1000 --runs runs/pretrained
    python experiments/pretrained_generators.py report --name nih1000 --runs runs/pretrained

``train`` runs ``medgan-aug train`` (1 thread); ``pack`` writes the float16 package file and prints its MD5
and size (put the MD5 in ``medgan_aug.data.pretrained.PRETRAINED``); ``report`` runs ``medgan-aug report`` on
the float32 run and on the packed float16 file with the same extractor, the numbers of the model card.
``--print`` shows the commands instead of running them.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from medgan_aug.data.pretrained import PRETRAINED, pack_pretrained, pretrained_dir
from medgan_aug.utils.files import file_md5

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

#: name -> the data options of its training run (everything else is the default recipe).
DATA = {
    "nih1000": ["--sample", "nih1000"],
    "pneumoniamnist": ["--path", str(SHARED / "pneumoniamnist_union.npz"), "--flag", "pneumoniamnist"],
}

ITERATIONS = 10_975  # the recipe ablation's 15 minutes of 1-thread CPU training


def commands(step: str, name: str, runs: Path, iterations: int) -> list[list[str]]:
    """The command lines of one step for the generator ``name``."""
    run, packed = runs / name, runs / f"{name}_packed"
    extractor = runs / "extractors" / f"{name}.pt"
    if step == "train":
        return [
            ["medgan-aug", "train", *DATA[name], "--conditional", "--fraction", "1.0", "--subset-seed", "0"]
            + ["--iterations", str(iterations), "--seed", "0", "--threads", "1", "--no-progress"]
            + ["--out", str(run)]
        ]
    if step == "report":
        common = ["--extractor", str(extractor), "--threads", "1", "--no-progress"]
        return [
            ["medgan-aug", "report", "--run", str(run), *common],
            ["medgan-aug", "report", "--pretrained", name, "--out", str(packed), *common],
        ]
    raise ValueError(f"unknown step {step!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=("train", "pack", "report"))
    ap.add_argument("--name", required=True, choices=sorted(PRETRAINED))
    ap.add_argument("--runs", type=Path, default=Path("runs/pretrained"), help="folder of the training runs")
    ap.add_argument("--iterations", type=int, default=ITERATIONS)
    ap.add_argument("--print", action="store_true", help="print the commands, run nothing")
    args = ap.parse_args()
    if args.step == "pack":
        dest = pretrained_dir() / PRETRAINED[args.name]["file"]
        if args.print:
            print(f"pack_pretrained({str(args.runs / args.name)!r}, {str(dest)!r})")
            return
        pack_pretrained(args.runs / args.name, dest)
        print(f"{dest}: {dest.stat().st_size} bytes, MD5 {file_md5(dest)}")
        return
    for cmd in commands(args.step, args.name, args.runs, args.iterations):
        print(shlex.join(cmd), flush=True)
        if not args.print:
            subprocess.run(cmd, check=True, stdout=sys.stdout, stderr=sys.stderr)


if __name__ == "__main__":
    main()
