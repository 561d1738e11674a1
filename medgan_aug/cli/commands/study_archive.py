"""``medgan-aug study-archive``: pack a finished study's records and test scores into one file, or rebuild its
summary from that file alone (:mod:`medgan_aug.apps.study.archive`).

Examples::

    medgan-aug study-archive pack --study results/nih --archive experiments/results/nih/scores_archive.json.gz
    medgan-aug study-archive rebuild --archive experiments/results/nih/scores_archive.json.gz --out /tmp/nih \\
        --check experiments/results/nih/summary.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register", "run_study_archive"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``study-archive`` subcommand."""
    parser = subparsers.add_parser(
        "study-archive",
        help="pack a study's records and test scores into one file, or rebuild its summary.md from it",
        description="pack: write every run record and test score array of a finished study folder (the runs "
        "its results.csv lists) into one file: .npz (float32 scores) or .json.gz (the committable text form: "
        "per-finding score ranks, which fix every AUC and 0.5-threshold accuracy of the summary). rebuild: "
        "write results.csv, summary.md and the figures from such a file alone into a new folder; --check "
        "compares the rebuilt summary.md with a committed one, byte for byte (exit 1 when they differ).",
    )
    parser.add_argument("action", choices=("pack", "rebuild"))
    parser.add_argument(
        "--archive", required=True, help="the archive (.npz or .json.gz) to write (pack) or read (rebuild)"
    )
    parser.add_argument("--study", help="pack: the study folder `medgan-aug study` wrote")
    parser.add_argument("--out", help="rebuild: a new or empty folder for the rebuilt files")
    parser.add_argument("--check", help="rebuild: a summary.md the rebuilt one must equal")
    parser.set_defaults(func=run_study_archive)


def run_study_archive(args: argparse.Namespace) -> int:
    """Run ``study-archive`` from parsed options; returns the exit code."""
    from medgan_aug.apps.study.archive import pack_study, rebuild_study

    if args.action == "pack":
        if not args.study:
            raise ValueError("study-archive pack needs --study (the study folder to pack)")
        path = pack_study(args.study, args.archive)
        print(f"archive: {path} ({path.stat().st_size / 1024:.0f} KiB)")
        return 0
    if not args.out:
        raise ValueError("study-archive rebuild needs --out (a new folder for the rebuilt summary)")
    summary = rebuild_study(args.archive, args.out)
    print(f"summary: {summary}")
    if args.check:
        expected = Path(args.check)
        if not expected.is_file():
            raise FileNotFoundError(f"--check {expected} does not exist")
        if summary.read_bytes() != expected.read_bytes():
            raise ValueError(f"the rebuilt {summary} differs from {expected}")
        print(f"identical to {expected}")
    return 0
