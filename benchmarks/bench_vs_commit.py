"""Whole ``medgan-aug train`` runs of this tree against an earlier commit, timed in turn.

The in-process benchmarks (``bench_gan_speed.py``) compare settings of one code base; this one answers
"how much faster is training now than it was at commit X", for everything a user runs: data loading,
the engine, handlers, losses.csv, the final generator file. The earlier commit is exported with
``git archive`` into a temporary folder (the repository and its work tree are not touched) and both
trees run the same command line as separate processes (``python -m medgan_aug train``, imported from
each tree through ``PYTHONPATH``), alternating in a random order per pair, so load from other
processes hits both alike. Each tree runs ``--iterations`` and ``--short`` iterations; the time of one
iteration is the difference of the median wall times divided by the difference in iterations, which
removes start-up, data loading and the final save.

Usage::

    python benchmarks/bench_vs_commit.py --baseline e248aef [--iterations 250] [--short 10] [--pairs 3] \\
        [--threads 1] [--csv experiments/results/gan_speed/vs_commit.csv] [-- extra train options]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (
    Path(os.environ.get("MEDGAN_AUG_DATA", REPO.parent / "shared" / "data")) / "nih1000_chestmnist.npz"
)


def export_commit(commit: str, dest: Path) -> Path:
    """Write the files of ``commit`` under ``dest`` (``git archive``); raise naming the commit if unknown."""
    archive = dest / "tree.tar"
    done = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", "-o", str(archive), commit],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"--baseline {commit!r}: git archive failed: {done.stderr.strip()}")
    tree = dest / "baseline"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def check_imports_from(tree: Path) -> None:
    """Fail unless a process started as :func:`timed_run` starts it imports medgan_aug from ``tree``."""
    code = "import medgan_aug; print(medgan_aug.__file__)"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    where = subprocess.run([sys.executable, "-c", code], env=env, cwd=tree, capture_output=True, text=True)
    found = Path(where.stdout.strip() or "?").resolve()
    if not found.is_relative_to(tree.resolve()):
        raise SystemExit(
            f"medgan_aug imports from {found}, not from {tree}: the timing would compare one tree"
        )


def timed_run(tree: Path, out: Path, iterations: int, args: argparse.Namespace, extra: list[str]) -> float:
    """Wall seconds of one ``python -m medgan_aug train`` process importing medgan_aug from ``tree``."""
    command = [
        sys.executable,
        "-m",
        "medgan_aug",
        "train",
        "--path",
        str(Path(args.path).resolve()),
        "--conditional",
        "--iterations",
        str(iterations),
        "--sample-every",
        str(10**6),
        "--checkpoint-every",
        str(10**6),
        "--threads",
        str(args.threads),
        "--no-progress",
        "--out",
        str(out.resolve()),
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(args.threads)}
    start = time.perf_counter()
    # cwd=tree: ``python -m`` puts the working directory first on sys.path, ahead of PYTHONPATH
    done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} (tree {tree}) failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="the earlier commit (any git revision)")
    ap.add_argument("--path", default=str(DEFAULT_DATA))
    ap.add_argument("--iterations", type=int, default=250)
    ap.add_argument("--short", type=int, default=10, help="the short run, subtracted to remove start-up")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--csv", default=None)
    args, extra = ap.parse_known_args()
    extra = [e for e in extra if e != "--"]
    if not args.iterations > args.short >= 1:
        raise SystemExit(f"need --iterations > --short >= 1, got {args.iterations} and {args.short}")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"baseline": export_commit(args.baseline, Path(tmp)), "now": REPO}
        for tree in trees.values():
            check_imports_from(tree)
        walls: dict[tuple[str, int], list[float]] = {}
        for pair in range(args.pairs):
            for n in (args.iterations, args.short):
                for name in rng.permutation(list(trees)):
                    out = Path(tmp) / f"{name}_{n}_{pair}"
                    walls.setdefault((name, n), []).append(timed_run(trees[name], out, n, args, extra))
                    print(f"pair {pair}: {name:8s} {n:4d} iterations {walls[name, n][-1]:6.1f} s", flush=True)
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    header = ["tree", "commit", f"median_s_{args.iterations}", f"median_s_{args.short}", "ms_per_iteration"]
    rows, per_iteration = [], {}
    for name, label in (("baseline", args.baseline), ("now", commit)):
        long_s, short_s = np.median(walls[name, args.iterations]), np.median(walls[name, args.short])
        per_iteration[name] = (long_s - short_s) / (args.iterations - args.short)
        rows.append([name, label, round(long_s, 1), round(short_s, 1), round(per_iteration[name] * 1e3, 1)])
    for row in [header, *rows]:
        print("  ".join(str(v) for v in row))
    print(f"speed-up per iteration: {per_iteration['baseline'] / per_iteration['now']:.2f}x")
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            csv.writer(f).writerows([header, *rows])


if __name__ == "__main__":
    main()
