"""``medgan-aug train``: train a (conditional) DCGAN on a low-data subset; a thin layer over ``train_gan``.

Example (the shared real file, conditional on the 14 findings)::

    medgan-aug train --path ../shared/data/nih1000_chestmnist.npz --conditional \\
        --fraction 1.0 --iterations 3000 --batch-size 64 --seed 0 --out runs/gan_nih1000_28

Exit codes: 0 done (or stopped early and resumable), 1 bad input, divergence (NaN/inf loss) or an
unusable checkpoint; the message names the file or the iteration.
"""

from __future__ import annotations

import argparse
import sys

from medgan_aug.apps.train import GANConfig, train_gan
from medgan_aug.cli.commands import add_subset_data_options
from medgan_aug.engines.gan_trainer import LOSSES, LR_SCHEDULES
from medgan_aug.utils.errors import CheckpointError, GANDivergenceError

__all__ = ["register", "config_from_args", "run_train"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    d = GANConfig()
    p = subparsers.add_parser(
        "train",
        help="train a DCGAN on a low-data subset of a MedMNIST train split",
        description="Train a (conditional) DCGAN with DiffAugment and an EMA generator on a low-data subset "
        "of a MedMNIST train split. Writes config.json, checkpoints/, samples/, losses.csv and generator.pt "
        "into --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_subset_data_options(p, d)

    model = p.add_argument_group("model")
    model.add_argument("--conditional", action="store_true", help="condition G and D on the label vector")
    model.add_argument("--latent-dim", type=int, default=d.latent_dim)
    model.add_argument("--base-channels", type=int, default=d.base_channels)
    model.add_argument("--spectral-norm", action="store_true", help="spectral normalisation in D")

    opt = p.add_argument_group("optimisation")
    opt.add_argument("--iterations", type=int, default=d.iterations, help="number of G steps")
    opt.add_argument("--batch-size", type=int, default=d.batch_size)
    opt.add_argument("--loss", choices=LOSSES, default=d.loss, help="bce = non-saturating DCGAN loss")
    opt.add_argument("--lr-g", type=float, default=d.lr_g)
    opt.add_argument("--lr-d", type=float, default=d.lr_d)
    opt.add_argument("--beta1", type=float, default=d.beta1)
    opt.add_argument("--beta2", type=float, default=d.beta2)
    opt.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=d.lr_schedule)
    opt.add_argument("--d-steps", type=int, default=d.d_steps, help="D updates per G update")
    opt.add_argument("--ema-decay", type=float, default=d.ema_decay, help="EMA of G's weights (0 = off)")
    opt.add_argument("--diffaugment", default=d.diffaugment, help="DiffAugment policy ('' = off)")
    opt.add_argument("--r1-gamma", type=float, default=d.r1_gamma, help="R1 penalty weight (0 = off)")

    run = p.add_argument_group("run")
    run.add_argument("--seed", type=int, default=d.seed)
    run.add_argument("--out", required=True, help="run directory")
    run.add_argument(
        "--resume", action="store_true", help="continue from the latest good checkpoint in --out"
    )
    run.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    run.add_argument("--n-saved", type=int, default=d.n_saved, help="checkpoints kept")
    run.add_argument("--sample-every", type=int, default=d.sample_every)
    run.add_argument("--n-samples", type=int, default=d.n_samples, help="images per sample grid")
    run.add_argument("--standing-stats-batches", type=int, default=d.standing_stats_batches)
    run.add_argument("--device", default=d.device, help="cpu, cuda[:N] or auto")
    run.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)


def config_from_args(args: argparse.Namespace) -> GANConfig:
    """The :class:`GANConfig` the parsed options describe."""
    return GANConfig(
        path=args.path,
        sample=args.sample,
        flag=args.flag,
        root=args.root,
        download=args.download,
        size=args.size,
        fraction=args.fraction,
        subset_seed=args.subset_seed,
        conditional=args.conditional,
        latent_dim=args.latent_dim,
        base_channels=args.base_channels,
        spectral_norm=args.spectral_norm,
        iterations=args.iterations,
        batch_size=args.batch_size,
        loss=args.loss,
        lr_g=args.lr_g,
        lr_d=args.lr_d,
        beta1=args.beta1,
        beta2=args.beta2,
        lr_schedule=args.lr_schedule,
        d_steps=args.d_steps,
        ema_decay=args.ema_decay,
        diffaugment=args.diffaugment,
        r1_gamma=args.r1_gamma,
        seed=args.seed,
        out=args.out,
        resume=args.resume,
        checkpoint_every=args.checkpoint_every,
        n_saved=args.n_saved,
        sample_every=args.sample_every,
        n_samples=args.n_samples,
        standing_stats_batches=args.standing_stats_batches,
        device=args.device,
        threads=args.threads,
        progress=not args.no_progress,
    )


def run_train(args: argparse.Namespace) -> int:
    """Run ``train`` from parsed options; returns the exit code."""
    config = config_from_args(args)
    try:
        run_dir = train_gan(config)
    except GANDivergenceError as err:
        print(f"medgan-aug train: error: {err}", file=sys.stderr)
        return 1
    except CheckpointError as err:
        print(f"medgan-aug train: error: {err}", file=sys.stderr)
        return 1
    done = (run_dir / "generator.pt").is_file()
    print(f"run directory: {run_dir}" + ("" if done else " (stopped early; continue with --resume)"))
    return 0
