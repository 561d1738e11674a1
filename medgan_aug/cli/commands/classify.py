"""``medgan-aug classify``: train one downstream classifier and score it; a thin layer over ``train_classifier_run``.

Example (10% of the shared real file, half of every batch replaced by generated images)::

    medgan-aug classify --path ../shared/data/nih1000_chestmnist.npz --fraction 0.1 \\
        --condition real+synthetic@0.5 --run runs/gan_nih1000_28 --iterations 500 --out runs/cls

The same command under ``torchrun --nproc_per_node N -m medgan_aug classify ...`` trains data-parallel. The
options are :class:`~medgan_aug.apps.ClassifierRunConfig`'s fields (:mod:`medgan_aug.cli.options`).
"""

from __future__ import annotations

import argparse
import json
import warnings

from medgan_aug.apps.classify_config import ClassifierRunConfig
from medgan_aug.cli import options
from medgan_aug.cli.pretrained import add_pretrained_option, generator_source

__all__ = ["register", "run_classify"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``classify`` subcommand."""
    parser = subparsers.add_parser(
        "classify",
        help="train and score one classifier on a low-data subset (real, classical, synthetic mixing)",
        description="Train one downstream classifier on a low-data subset of a MedMNIST train split under a "
        "study condition, score the test split once, and write config.json, classifier.pt, losses.csv and "
        "metrics.json into --out. Under torchrun it trains data-parallel (--batch-size is the global batch).",
    )
    options.add_config_options(parser, ClassifierRunConfig, groups=("data", "condition", "classifier", "run"))
    condition = next(g for g in parser._action_groups if g.title == "condition")
    add_pretrained_option(condition)  # resolved to the packaged file, which becomes gan_run
    parser.set_defaults(func=run_classify)


def run_classify(args: argparse.Namespace) -> int:
    """Run ``classify`` from parsed options; returns the exit code."""
    from medgan_aug.apps.classify import train_classifier_run  # torch: only when the command runs

    config = options.config_from_args(ClassifierRunConfig, args)
    config.gan_run = generator_source(config.gan_run, args.pretrained, required=False)
    if args.pretrained is not None:
        warnings.warn(
            f"--pretrained {args.pretrained} saw every training image of its data set: on that data this is no "
            "low-data result (its model card, medgan_aug/data/pretrained_files/)",
            stacklevel=1,
        )
    out = train_classifier_run(config)
    metrics_file = out / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        split = metrics.get("split", "test")  # the split scored: --score-split
        print(
            f"{split} AUC {metrics['auc']:.4f}  ACC {metrics['acc']:.4f}  ({metrics['world_size']} process(es))"
        )
    print(f"run directory: {out}")
    return 0
