"""``medgan-aug plan``: how many study seeds a target ΔAUC needs (80% power, two-sided paired t at 5%).

Examples::

    medgan-aug plan --effect 0.03 --sd 0.031               # per-seed sd known
    medgan-aug plan --effect 0.03 --from results/quick      # per-seed sd of every comparison of a pilot study
"""

from __future__ import annotations

import argparse

__all__ = ["register", "run_plan"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``plan`` subcommand."""
    parser = subparsers.add_parser(
        "plan",
        help="size a study: seeds needed to detect a ΔAUC, from a per-seed sd or a pilot study",
        description="Print how many study seeds detect a true ΔAUC of --effect with 80% power (two-sided paired "
        "t-test at 5% over per-seed ΔAUC), from a per-seed standard deviation (--sd) or from the per-seed ΔAUC "
        "of every comparison of a finished pilot study (--from).",
    )
    parser.add_argument("--effect", type=float, required=True, help="the ΔAUC to detect (> 0)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--sd", type=float, help="standard deviation of the per-seed ΔAUC")
    source.add_argument(
        "--from", dest="pilot", metavar="STUDY", help="a finished study's folder or results.csv"
    )
    parser.add_argument(
        "--seeds", type=int, default=5, help="seeds of the planned study, for what it detects"
    )
    parser.add_argument("--power", type=float, default=0.8, help="the wanted power")
    parser.set_defaults(func=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    """Run ``plan`` from parsed options; returns the exit code."""
    from medgan_aug.apps.plan import pilot_comparisons, seed_plan

    if args.sd is not None:
        plan = seed_plan(args.effect, args.sd, args.seeds, args.power)
        print(
            f"per-seed sd {args.sd:.4f}: {plan['seeds_needed']} seeds detect ΔAUC {args.effect:g} with "
            f"{args.power:.0%} power; {args.seeds} seeds detect >= {plan['detectable']:.4f}"
        )
        return 0
    comparisons = pilot_comparisons(args.pilot)
    if not comparisons:
        raise ValueError(
            f"{args.pilot}: no comparison with two study seeds or more to take a per-seed sd from"
        )
    width = max(len(f"{c['condition']} vs {c['baseline']} ({c['classifier']})") for c in comparisons)
    print(
        f"{'fraction':>8}  {'comparison':<{width}}  seeds  per-seed sd  detectable now  seeds for {args.effect:g}"
    )
    for c in comparisons:
        plan = seed_plan(args.effect, c["sd"], c["n_seeds"], args.power)
        name = f"{c['condition']} vs {c['baseline']} ({c['classifier']})"
        print(
            f"{c['fraction']:>8g}  {name:<{width}}  {c['n_seeds']:>5}  {c['sd']:>11.4f}  "
            f"{'>= ' + format(plan['detectable'], '.4f'):>14}  {plan['seeds_needed']:>{10 + len(f'{args.effect:g}')}}"
        )
    return 0
