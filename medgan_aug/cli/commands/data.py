"""``medgan-aug data info``: what a MedMNIST file holds (splits, counts, size, positives per label)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medgan_aug.data.medmnist import MedMNISTDataset


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that pick a MedMNIST file, shared by every command that reads one."""
    source = parser.add_argument_group("data source (a local file by --path, or the official one by --flag)")
    source.add_argument("--path", help="a MedMNIST-format .npz file (validated for layout)")
    source.add_argument("--sample", help="a real sample shipped in the package (nih1000) instead of --path")
    source.add_argument("--flag", default="chestmnist", help="MedMNIST flag")
    source.add_argument("--root", help="medmnist data folder of the official files (default: ~/.medmnist)")
    source.add_argument("--download", action="store_true", help="download the official file if missing")
    source.add_argument("--size", type=int, default=None, help="image size: 28, 64, 128 or 224")


def load_split(args: argparse.Namespace, split: str) -> MedMNISTDataset:
    """Open one split of the file the source arguments name."""
    from medgan_aug.data.medmnist import MedMNISTDataset
    from medgan_aug.data.sources import dataset_source

    return MedMNISTDataset(split=split, **dataset_source(vars(args)))


def describe(datasets: dict[str, MedMNISTDataset]) -> str:
    """A plain-text table of a file's splits: counts, image size, task, positives per label."""
    import numpy as np

    first = next(iter(datasets.values()))
    lines = [
        f"source: {first.source}",
        f"flag: {first.flag}   task: {first.task}   image: {first.num_channels}x{first.size}x{first.size}",
        "split sizes: " + "  ".join(f"{s} {len(d)}" for s, d in datasets.items()),
        "",
        f"{'label':<22}" + "".join(f"{s:>8}" for s in datasets),
    ]
    counts = {s: d.targets.sum(axis=0).astype(np.int64) for s, d in datasets.items()}
    if first.num_labels == 1:  # binary-class: class 0 is the rest of the split
        counts = {s: np.array([len(datasets[s]) - c[0], c[0]]) for s, c in counts.items()}
    for i, name in enumerate(first.label_names):
        lines.append(f"{i:>2} {name:<19}" + "".join(f"{counts[s][i]:>8}" for s in datasets))
    if first.task.startswith("multi-label"):
        lines.append(
            f"{'   (no finding)':<22}"
            + "".join(f"{int((d.targets.sum(axis=1) == 0).sum()):>8}" for d in datasets.values())
        )
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    """Run ``data info`` from parsed options; returns the exit code."""
    from medgan_aug.data.medmnist import SPLITS

    print(describe({split: load_split(args, split) for split in SPLITS}))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` subcommand and its ``info`` action."""
    parser = subparsers.add_parser(
        "data",
        help="inspect MedMNIST data files",
        description="Inspect MedMNIST-format data files (ACTION info: what a file holds).",
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    info = actions.add_parser(
        "info",
        help="print splits, counts, image size and positives per finding",
        description="Print a MedMNIST file's splits and their sizes, the image size, the task and the "
        "positives per finding (label) in each split.",
    )
    add_source_arguments(info)
    info.set_defaults(func=run_info)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
