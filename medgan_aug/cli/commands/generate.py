"""``medgan-aug generate``: write a trained generator's images as a MedMNIST-format ``.npz``.

The file's layout, determinism and memory use: :mod:`medgan_aug.apps.generate`.
"""

from __future__ import annotations

import argparse

from medgan_aug.cli.options import add_hidden_alias, add_threads_option, torch_threads
from medgan_aug.cli.pretrained import add_pretrained_option, generator_source

__all__ = ["register", "run_generate"]


def run_generate(args: argparse.Namespace) -> int:
    """Run ``generate`` from parsed options; returns the exit code."""
    from medgan_aug.apps.generate import generate_medmnist  # torch: only when the command runs

    with torch_threads(args.threads):
        written = generate_medmnist(
            generator_source(args.run, args.pretrained),
            args.num,
            args.out,
            seed=args.seed,
            balanced=args.balanced,
            overwrite=args.overwrite,
            batch_size=args.batch_size,
            device=args.device,
            progress=not args.no_progress,
        )
    print(
        f"wrote {written.path}: {written.num_images} synthetic images {written.image_shape} from "
        f"{written.source} (seed {written.seed}, labels {'balanced' if args.balanced else 'joint resampling'}); "
        f"per-label counts: {written.label_counts}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``generate`` subcommand."""
    parser = subparsers.add_parser(
        "generate",
        help="write synthetic images from a trained generator as a MedMNIST-format .npz",
        description="Write a trained generator's images as a MedMNIST-format .npz (empty val/test splits), "
        "streamed to the file: memory does not grow with --num, and an output larger than the free disk "
        "space is refused before anything is written.",
    )
    generator = parser.add_mutually_exclusive_group(required=True)
    generator.add_argument("--run", help="training run directory (or its generator.pt)")
    add_pretrained_option(generator)
    parser.add_argument("--num", type=int, required=True, help="number of images")
    parser.add_argument("--seed", type=int, default=0, help="seed: image i depends only on (seed, i)")
    parser.add_argument("--out", required=True, help="output .npz (MedMNIST layout; train split)")
    parser.add_argument(
        "--balanced",
        action="store_true",
        help="class-balanced labels (rare findings raised); without it the run's real label vectors are "
        "resampled",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out if generate wrote it (a .npz it signed); any other file is never replaced",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images generated per step")
    parser.add_argument("--device", default="cpu", help="torch device of the generator (cpu, cuda[:N])")
    add_threads_option(parser)
    progress = parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_hidden_alias(parser, "--quiet", progress)  # its former name
    parser.set_defaults(func=run_generate)
