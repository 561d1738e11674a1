"""``medgan-aug export-bundle``: a trained run's generator as a MONAI bundle (see :mod:`medgan_aug.bundle`).

Example::

    medgan-aug export-bundle --run runs/gan_nih1000_28 --out bundles/gan_nih1000_28
    medgan-aug export-bundle --pretrained nih1000 --out bundles/nih1000   # a generator shipped in the package
    cd bundles/gan_nih1000_28 && python -m monai.bundle run --config_file configs/inference.json
"""

from __future__ import annotations

import argparse

from medgan_aug.cli.pretrained import add_pretrained_option, generator_source

__all__ = ["register", "run_export_bundle"]


def run_export_bundle(args: argparse.Namespace) -> int:
    """Run ``export-bundle`` from parsed options; returns the exit code."""
    from medgan_aug.bundle.export import export_bundle  # torch: only when the command runs

    out = export_bundle(
        generator_source(args.run, args.pretrained),
        args.out,
        overwrite=args.overwrite,
        num_samples=args.num_samples,
        seed=args.seed,
        version=args.version,
        name=args.name,
    )
    print(
        f"wrote MONAI bundle {out}; generate images with:\n"
        f"  cd {out} && python -m monai.bundle run --config_file configs/inference.json"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export-bundle`` subcommand."""
    parser = subparsers.add_parser(
        "export-bundle",
        help="export a trained generator as a MONAI bundle",
        description="Write a MONAI bundle (configs/metadata.json, configs/inference.json, models/model.pt, "
        "docs/README.md) for a training run's EMA generator. Its inference generates the same images as "
        "SyntheticDataset.from_run for the same seed.",
    )
    generator = parser.add_mutually_exclusive_group(required=True)
    generator.add_argument("--run", help="training run directory (or its generator.pt)")
    add_pretrained_option(generator)
    parser.add_argument("--out", required=True, help="bundle folder to create")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--num-samples", type=int, default=64, help="images the bundle generates by default")
    parser.add_argument("--seed", type=int, default=0, help="default seed of the bundle's inference")
    parser.add_argument("--version", default="0.1.0", help="bundle version")
    parser.add_argument("--name", default=None, help="bundle name (default: the --out folder name)")
    parser.set_defaults(func=run_export_bundle)
