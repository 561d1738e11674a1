"""``medgan-aug report``: figures, metrics with floors, memorization audit and an HTML page for a generator run
(``--model dcgan`` or ``ddpm``).

Example (the run of ``medgan-aug train --out runs/gan_nih1000_28``)::

    medgan-aug report --run runs/gan_nih1000_28 --num 1000

writes real_vs_synthetic.png, progression.png/.gif, losses.png, per_finding.png (conditional runs),
memorization_pairs.png, memorization_hist.png, metrics.json and report.html into the run directory.
The distances use an in-domain feature extractor (not Inception); see :mod:`medgan_aug.metrics.generative`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from medgan_aug.apps.report.settings import ReportSettings
from medgan_aug.cli import options
from medgan_aug.cli.options import add_threads_option, torch_threads
from medgan_aug.cli.pretrained import add_pretrained_option

__all__ = ["register", "run_report"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report",
        help="evaluate a trained generator run and write figures, metrics.json and report.html into it",
        description="Evaluate a generator run (DCGAN or diffusion): in-domain Fréchet distance and KID with "
        "real-vs-real floors, precision/recall, density/coverage, conditional AUC, label faithfulness, "
        "memorization audit; figures and an HTML page in the run directory. Not Inception FIDs: the features "
        "come from a small CNN trained on the real training split (saved and reused via --extractor).",
    )
    generator = p.add_mutually_exclusive_group(required=True)
    generator.add_argument("--run", help="run directory written by `medgan-aug train`")
    add_pretrained_option(generator)
    p.add_argument(
        "--out",
        help="with --pretrained: the folder to write its run record, generator file and report into (with "
        "--run the report goes into the run directory)",
    )
    options.add_config_options(p, ReportSettings)
    add_threads_option(p)
    p.set_defaults(func=run_report)


def _run_folder(args: argparse.Namespace) -> str:
    """The run folder to report on: ``--run``, or ``--out`` made the run folder of ``--pretrained``."""
    if args.pretrained is None:
        if args.out is not None:
            raise ValueError(f"--out {args.out} is for --pretrained; with --run the report goes into the run")
        return str(args.run)
    if args.out is None:
        raise ValueError(
            f"--pretrained {args.pretrained} needs --out DIR: the folder to write its report into"
        )
    from medgan_aug.data.pretrained import pretrained_run_folder  # torch: only when the command runs

    return str(pretrained_run_folder(args.pretrained, args.out))


def run_report(args: argparse.Namespace) -> int:
    """Run ``report`` from parsed options; returns the exit code."""
    from medgan_aug.apps.report.report import write_report

    run = _run_folder(args)
    try:
        with torch_threads(args.threads):
            m = write_report(run, **dataclasses.asdict(options.config_from_args(ReportSettings, args)))
    except ImportError as err:  # only the optional Inception FID needs an optional package
        print(f"medgan-aug report: error: {err}", file=sys.stderr)
        return 1
    d, ext = m["distances"], m["extractor"]
    print(f"report written to {run}/report.html (numbers in metrics.json; n={d['n']} per set)")
    print(
        f"  extractor {ext['version']}: AUC val {ext['val_auc']:.3f}, test {ext['test_auc']:.3f}, "
        f"train {ext['train_auc']:.3f} (the instrument behind the numbers below, pixel memorization aside)"
    )
    for key in ("frechet_distance", "kid", "precision", "recall", "density", "coverage"):
        print(
            f"  {key:17s} {d[key]['value']:.4g}  (real-vs-real floor {d[key]['floor']:.4g}, "
            f"held-out real {d[key]['heldout']:.4g})"
        )
    if m["conditional_fidelity"] is not None:
        c = m["conditional_fidelity"]
        print(
            f"  conditional AUC   {c['auc']:.3f}  (same classifier on held-out real: "
            f"{c['reference_real_heldout_auc']:.3f})"
        )
    f = m["label_faithfulness"]
    if f is not None:
        print(
            f"  label faithfulness mean score shift {f['mean_shift']:.3f}, on/off AUC {f['mean_auc']:.3f} "
            "(0 and 0.5 if the generator ignores its labels)"
        )
    s = m["sampling"]
    steps = (
        f", {s['ddim_steps']} DDIM steps, guidance {s['guidance_scale']:g}"
        if s["ddim_steps"] is not None
        else ""
    )
    print(
        f"  sampling          {s['images_generated']} images in {s['seconds']:.1f} s "
        f"({m['generator']['family']}{steps})"
    )
    px = m["memorization"]["pixel"]
    print(
        f"  memorization      {100 * px['share_flagged']:.1f}% of synthetic images at or below the 1st "
        f"percentile of real-to-real pixel NN distances ({px['n_exact_copies']} exact copies)"
    )
    return 0
