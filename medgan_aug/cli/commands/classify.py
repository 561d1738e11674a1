"""``medgan-aug classify``: train one downstream classifier and score it; a thin layer over ``train_classifier_run``.

Example (10% of the shared real file, half of every batch replaced by generated images)::

    medgan-aug classify --path ../shared/data/nih1000_chestmnist.npz --fraction 0.1 \\
        --condition real+synthetic@0.5 --gan-run runs/gan_nih1000_28 --iterations 500 --out runs/cls

The same command under ``torchrun --nproc_per_node N -m medgan_aug classify ...`` trains data-parallel.
"""

from __future__ import annotations

import argparse
import json

from medgan_aug.apps.classify import ClassifierRunConfig, train_classifier_run
from medgan_aug.cli.commands import add_subset_data_options
from medgan_aug.networks.classifiers import CLASSIFIER_NAMES

__all__ = ["register", "run_classify"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``classify`` subcommand."""
    d = ClassifierRunConfig(out="")
    p = subparsers.add_parser(
        "classify",
        help="train and score one classifier on a low-data subset (real, classical, synthetic mixing)",
        description="Train one downstream classifier on a low-data subset of a MedMNIST train split under a "
        "study condition, score the test split once, and write config.json, classifier.pt, losses.csv and "
        "metrics.json into --out. Under torchrun it trains data-parallel (--batch-size is the global batch).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_subset_data_options(p, d)

    mix = p.add_argument_group("condition")
    mix.add_argument(
        "--condition", default=d.condition,
        help="real, real+classical, real+synthetic@R, real+synthetic@R+classical or synthetic-only",
    )  # fmt: skip
    mix.add_argument("--gan-run", help="run folder of `medgan-aug train` (synthetic conditions)")
    mix.add_argument(
        "--num-synthetic", type=int, default=d.num_synthetic, help="generated images in the pool"
    )

    opt = p.add_argument_group("classifier")
    opt.add_argument("--classifier", choices=CLASSIFIER_NAMES, default=d.classifier)
    opt.add_argument("--iterations", type=int, default=d.iterations, help="optimiser steps")
    opt.add_argument("--batch-size", type=int, default=d.batch_size, help="the global batch")
    opt.add_argument("--lr", type=float, default=d.lr)
    opt.add_argument("--seed", type=int, default=d.seed)

    run = p.add_argument_group("run")
    run.add_argument("--out", required=True, help="run folder to create")
    run.add_argument("--device", default=d.device, help="cpu, cuda[:N] or auto")
    run.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_classify)


def run_classify(args: argparse.Namespace) -> int:
    """Run ``classify`` from parsed options; returns the exit code."""
    config = ClassifierRunConfig(
        out=args.out, path=args.path, sample=args.sample, flag=args.flag, root=args.root, download=args.download, size=args.size,
        fraction=args.fraction, subset_seed=args.subset_seed, condition=args.condition, gan_run=args.gan_run,
        num_synthetic=args.num_synthetic, classifier=args.classifier, iterations=args.iterations,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device, threads=args.threads,
        progress=not args.no_progress,
    )  # fmt: skip
    out = train_classifier_run(config)
    metrics_file = out / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        print(
            f"test AUC {metrics['auc']:.4f}  ACC {metrics['acc']:.4f}  ({metrics['world_size']} process(es))"
        )
    print(f"run directory: {out}")
    return 0
