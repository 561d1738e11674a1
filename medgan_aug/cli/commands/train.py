"""``medgan-aug train``: train a (conditional) DCGAN on a low-data subset; a thin layer over ``train_gan``.

Example (the shared real file, conditional on the 14 findings)::

    medgan-aug train --path ../shared/data/nih1000_chestmnist.npz --conditional \\
        --fraction 1.0 --iterations 3000 --batch-size 64 --seed 0 --out runs/gan_nih1000_28

The options are :class:`~medgan_aug.apps.GANConfig`'s fields (:mod:`medgan_aug.cli.options`). Exit codes: 0
done (or stopped early and resumable), 1 bad input, divergence (NaN/inf loss) or an unusable checkpoint; the
message names the file or the iteration.
"""

from __future__ import annotations

import argparse

from medgan_aug.apps.train_config import GANConfig
from medgan_aug.cli import options

__all__ = ["register", "config_from_args", "run_train"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train a generator (DCGAN, or --model ddpm) on a low-data subset or pool of a MedMNIST train split",
        description="Train a (conditional) DCGAN with DiffAugment and an EMA generator, or with --model ddpm "
        "MONAI's diffusion UNet, on a low-data subset of a MedMNIST train split (or, with --pool, on every "
        "training image, labels from the subset only). Writes config.json, checkpoints/, samples/, losses.csv and generator.pt "
        "into --out.",
    )
    options.add_config_options(parser, GANConfig)
    parser.set_defaults(func=run_train)


def config_from_args(args: argparse.Namespace) -> GANConfig:
    """The :class:`GANConfig` the parsed options describe."""
    return options.config_from_args(GANConfig, args)


def run_train(args: argparse.Namespace) -> int:
    """Run ``train`` from parsed options; returns the exit code."""
    from medgan_aug.apps.train import train_gan  # torch: only when the command runs

    run_dir = train_gan(config_from_args(args))
    done = (run_dir / "generator.pt").is_file()
    print(f"run directory: {run_dir}" + ("" if done else " (stopped early; continue with --resume)"))
    return 0
