"""``medgan-aug study``: run (or resume) a low-data augmentation study grid from a config file."""

from __future__ import annotations

import argparse
import logging


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from err
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return index, count


def run(args: argparse.Namespace) -> int:
    """Run ``study`` from parsed options; returns the exit code."""
    import torch

    from medgan_aug.apps.study.config import load_study_config
    from medgan_aug.apps.study.study import run_study
    from medgan_aug.utils.devices import torch_thread_count

    torch.set_num_threads(torch_thread_count(args.threads, args.jobs))
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("medgan_aug").setLevel(
        logging.INFO
    )  # one line per finished run, not ignite's per epoch
    config = load_study_config(
        args.config, device=args.device, path=args.path, sample=args.sample, flag=args.flag
    )
    out = run_study(config, args.out, shard=args.shard, jobs=args.jobs, progress=not args.no_progress)
    print(f"results: {out / 'results.csv'}\nsummary: {out / 'summary.md'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``study`` subcommand."""
    parser = subparsers.add_parser(
        "study",
        help="run a low-data augmentation study grid (resumable)",
        description="Run a low-data augmentation study from a config file: for every data fraction and seed "
        "a GAN and the classifiers of every condition, then results.csv, summary.md and the figures in --out. "
        "Finished runs in --out are skipped, so an interrupted study resumes; --shard splits the grid "
        "between machines and --jobs between local processes.",
    )
    parser.add_argument(
        "--config",
        required=True,
        help="study config: a YAML/JSON file (e.g. experiments/configs/nih1000_chestmnist.yaml) or a packaged "
        "config's name (quick)",
    )
    parser.add_argument("--out", required=True, help="results folder (finished runs in it are skipped)")
    parser.add_argument("--path", help="override the config's data file (a MedMNIST-format .npz)")
    parser.add_argument("--sample", help="override the config's data with a packaged sample (nih1000)")
    parser.add_argument("--flag", help="override the config's MedMNIST flag")
    parser.add_argument("--shard", type=_shard, default="0/1", help="run shard i of n (0-based), e.g. 1/4")
    parser.add_argument("--jobs", type=int, default=1, help="local worker processes")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per process (default: half the CPUs shared by the jobs, at least 1; "
        "1 is fastest on a busy 2-core machine; more than the CPUs is bounded to them)",
    )
    parser.add_argument(
        "--device",
        default=None,
        help="cpu, cuda[:N] or auto for GANs, classifiers and evaluations (default: the config's device, "
        "cpu); under torchrun cuda/auto give each process cuda:LOCAL_RANK",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
