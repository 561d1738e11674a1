"""The recipe, re-decided (issue 20): each (data set, recipe) cell of the recipe ablation with several GAN
training seeds, scored by the held-out-anchored instrument, so the seed-to-seed spread sits beside each mean.

Only the GAN's training seed varies between the seeds of a cell (initialisation, noise, augmentation draws,
batch order): the low-data subset of a fraction is that of subset seed 0 for every seed, and evaluation
(the extractor, the generated sample, the classifiers) is seeded the same for all runs, so the sd over seeds
is the recipe's own training noise.

``train`` trains every (seed, data set, recipe) to the budget milestones (minutes of 1-thread CPU training,
turned into iterations by ``--calibration`` as :mod:`recipe_ablation` does) into ``<runs>/<data set>/<recipe>/
seed<k>/``, seed-major (every recipe of seed 0 first), resumably (finished milestones are skipped, an
interrupted one continues from its last checkpoint). ``evaluate`` scores every finished run on the validation
split (never the test split) into ``<out>/seeds_<data set>.csv``, one row per (recipe, seed, minutes),
skipping rows already there; ``table`` writes ``<out>/table.md`` (mean +- sd over seeds, and the decision
rule applied).

    PYTHONPATH=. OMP_NUM_THREADS=1 python experiments/recipe_ablation_seeds.py train --runs /tmp/ablation/runs \\
        --calibration experiments/results/recipe_ablation/cpu_round3/calibration.json --workers 2 \\
        --datasets nih1000_100 pneumonia_100 pneumonia_10 --recipes ada_acgan_fast ada_fast acgan_fast \\
        --seeds 0 1 2 --minutes 5
    PYTHONPATH=. OMP_NUM_THREADS=1 python experiments/recipe_ablation_seeds.py evaluate --runs /tmp/ablation/runs \\
        --calibration experiments/results/recipe_ablation/cpu_round3/calibration.json \\
        --out experiments/results/recipe_ablation/seeds3 --datasets nih1000_100 --seeds 0 1 2 --minutes 5
    PYTHONPATH=. python experiments/recipe_ablation_seeds.py table --out experiments/results/recipe_ablation/seeds3
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import recipe_ablation as ra  # noqa: E402

#: the recipes compared: the default and its two halves, all at the speed settings (one iteration budget)
SEED_RECIPES = ("ada_acgan_fast", "ada_fast", "acgan_fast")
SEED_DATASETS = ("nih1000_100", "pneumonia_100", "pneumonia_10")
DEFAULT_RECIPE = "ada_acgan_fast"
#: simpler than the default first: each drops one of its two parts
SIMPLER = ("ada_fast", "acgan_fast")


def run_dir(root: Path, dataset: str, recipe: str, seed: int) -> Path:
    return Path(root) / dataset / recipe / f"seed{seed}"


# -- train -----------------------------------------------------------------------------------------
def _train_one(job: tuple[Any, ...]) -> str:
    """One (data set, recipe, seed) through its milestones (see :func:`train` for the job's fields)."""
    dataset, recipe, seed, root, calibration, device, milestones, deadline, checkpoint_every, precision = job
    from medgan_aug.apps.train import train_gan

    torch.set_num_threads(1)
    run = run_dir(Path(root), dataset, recipe, seed)
    started = time.perf_counter()
    done = []
    for minutes in milestones:
        iterations = ra.milestone_iterations(calibration, recipe)[minutes]
        if (run / f"generator_{minutes:g}min.pt").is_file():
            continue
        if time.time() > deadline:
            break
        config = ra._config(
            dataset,
            recipe,
            run,
            iterations,
            device,
            resume=(run / "config.json").is_file(),
            seed=seed,
            checkpoint_every=checkpoint_every,
            **({} if precision is None else {"precision": precision}),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train_gan(config)
        (run / "generator.pt").replace(run / f"generator_{minutes:g}min.pt")
        done.append(f"{minutes:g}")
    stamp = time.strftime("%H:%M:%S", time.gmtime())
    return (
        f"{stamp} {dataset}/{recipe}/seed{seed}: milestones {done} in {time.perf_counter() - started:.0f} s"
    )


def train(args: Any) -> None:
    calibration = json.loads(args.calibration.read_text())
    deadline = time.time() + args.deadline
    cells = [(d, r, seed) for seed in args.seeds for d in args.datasets for r in args.recipes]
    if args.order == "dataset":  # one data set's seeds first, each seed-major (all recipes of seed 0 first)
        cells.sort(key=lambda c: args.datasets.index(c[0]))  # stable: keeps the seed-major order within
    jobs = [
        (
            d,
            r,
            seed,
            str(args.runs),
            calibration,
            args.device,
            tuple(args.minutes),
            deadline,
            args.checkpoint_every,
            args.precision,
        )
        for d, r, seed in cells
    ]
    for m in args.minutes:
        if m not in ra.MILESTONES:
            raise SystemExit(f"--minutes {m:g} is not a milestone ({ra.MILESTONES})")
    ra._run_jobs(_train_one, jobs, args.workers)


# -- evaluate --------------------------------------------------------------------------------------
#: held-out-anchored columns, per feature space: "trained" (the data set's extractor, fitted on train and
#: selected on val) and "random" (the small CNN at a fixed random initialisation, fitted on nothing)
ANCHORED = (
    "ratio", "ratio_std", "fd_synthetic", "fd_train", "fd_floor", "kid_synthetic", "kid_train",
    "precision_synthetic", "precision_train", "recall_synthetic", "recall_train",
)  # fmt: skip
SPACES = ("trained", "random")

COLUMNS = (
    "dataset", "recipe", "seed", "minutes", "iterations", "gan_precision", "channels_last", "extractor_val_auc",
    "heldout", "anchor_n", "floor_kind", *(f"{k}_{s}" for s in SPACES for k in ANCHORED),
    "faithfulness_shift", "faithfulness_auc", "target_shift", *(f"shift_{n}" for n in ra.FAITHFULNESS_FINDINGS),
    "synthetic_only_val_auc", "real_only_val_auc",
    # the earlier instrument (FD against the whole training split, held-out real compared the same way)
    "fd", "fd_heldout", "fd_floor", "recall", "recall_heldout", "precision", "eval_seconds",
)  # fmt: skip


def _anchored_columns(result: dict[str, Any], space: str) -> dict[str, Any]:
    row = {f"ratio_{space}": result["ratio"], f"ratio_std_{space}": result["ratio_std"]}
    for metric, short in (("frechet_distance", "fd"), ("kid", "kid"), ("precision", "precision"),
                          ("recall", "recall")):  # fmt: skip
        for kind in ("synthetic", "train", "floor"):
            key = f"{short}_{kind}_{space}"
            if key in {f"{k}_{space}" for k in ANCHORED}:
                row[key] = result[metric][kind]
    return row


def _target_shift(dataset: str, row: dict[str, Any]) -> float:
    if dataset.startswith("nih"):
        return float(np.mean([row[f"shift_{n}"] for n in ra.NIH_FINDINGS]))
    return float(row["shift_pneumonia"])


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def evaluate_dataset(dataset: str, args: Any) -> str:
    """Every finished run of ``dataset`` (``args.recipes`` x ``args.seeds`` at ``args.minutes``) against the
    ``args.heldout`` split: validation (while choosing) into ``<out>/seeds_<dataset>.csv``, or test (once, for
    the chosen recipe) into ``<out>/test_<dataset>.csv``. The extractor is the same either way (fitted on
    train, selected on val); the real-only AUC column is then on test too."""
    from medgan_aug.apps.extractor_fit import load_or_fit_extractor
    from medgan_aug.apps.report.instrument import split_images
    from medgan_aug.data.patients import split_patients
    from medgan_aug.data.stratify import low_data_indices
    from medgan_aug.metrics.extractor import extractor_features
    from medgan_aug.metrics.heldout import heldout_anchored_distances, random_cnn_features

    torch.set_num_threads(args.threads)
    calibration = json.loads(args.calibration.read_text())
    path = args.out / f"{'seeds' if args.heldout == 'val' else 'test'}_{dataset}.csv"
    rows = list(csv.DictReader(open(path))) if path.is_file() else []
    done = {(r["recipe"], r["seed"], r["minutes"]) for r in rows}
    todo = [
        (m, s, r)
        for m in args.minutes
        for s in args.seeds
        for r in args.recipes
        if (r, str(s), f"{m:g}") not in done
        and (run_dir(args.runs, dataset, r, s) / f"generator_{m:g}min.pt").is_file()
    ]
    if not todo:
        return f"{dataset}: {len(rows)} rows, nothing new"
    splits = ra._splits(dataset, args.heldout)
    train = splits["train"]
    model, meta, _ = load_or_fit_extractor(
        args.runs / "extractors" / f"{dataset.split('_')[0]}.pt",
        train,
        splits["val"],
        iterations=args.extractor_iterations,
        seed=0,
        device=args.device,
    )
    model = model.to(args.device)
    images = {k: split_images(splits[k]) for k in ("train", "heldout")}
    # the real training images the GAN had: the low-data subset of subset seed 0 (all of train at 100%)
    subset = low_data_indices(train.labels, fraction=ra.DATASETS[dataset]["fraction"], seed=0)
    patients = split_patients(ra.SHARED / ra.DATASETS[dataset]["path"], "train", len(train.labels))
    subset_patients = None if patients is None else patients[subset]
    features = {
        "trained": {k: extractor_features(model, x, device=args.device) for k, x in images.items()},
        "random": {k: random_cnn_features(x, device=args.device) for k, x in images.items()},
    }
    full_train = (model, features["trained"]["train"], features["trained"]["heldout"])
    real_auc = None

    for minutes, seed, recipe in todo:
        t = time.perf_counter()
        gen = run_dir(args.runs, dataset, recipe, seed) / f"generator_{minutes:g}min.pt"
        anchor_info: dict[str, Any] = {}

        def anchored(synthetic: torch.Tensor, anchor_info: dict[str, Any] = anchor_info) -> dict[str, Any]:
            syn = {
                "trained": extractor_features(model, synthetic, device=args.device),
                "random": random_cnn_features(synthetic, device=args.device),
            }
            out: dict[str, Any] = {}
            for space in SPACES:
                result = heldout_anchored_distances(
                    features[space]["heldout"],
                    features[space]["train"][subset],
                    syn[space],
                    train_patients=subset_patients,
                    repeats=args.repeats,
                    seed=0,
                    kid_subsets=args.kid_subsets,
                )
                out.update(_anchored_columns(result, space))
                anchor_info.update(anchor_n=result["n"], floor_kind=result["floor_kind"])
            return out

        clf_iterations = args.clf_iterations
        row = ra.evaluate_generator(
            gen, splits, full_train, args.num_samples, clf_iterations, args.device, extra=anchored
        )
        if clf_iterations:
            if real_auc is None:
                real_auc = ra._real_only_val_auc(dataset, splits, clf_iterations, args.device)
            row["real_only_val_auc"] = real_auc
        row.update(anchor_info)
        settings = json.loads((gen.parent / "config.json").read_text())
        row.update(
            gan_precision=settings.get("precision_used", settings["config"].get("precision")),
            channels_last=settings["config"].get("channels_last"),
        )
        row.update(
            dataset=dataset,
            recipe=recipe,
            seed=seed,
            minutes=f"{minutes:g}",
            iterations=ra.milestone_iterations(calibration, recipe)[minutes],
            extractor_val_auc=meta.get("selection", {}).get("best_score"),
            heldout=args.heldout,
            target_shift=_target_shift(dataset, row),
            eval_seconds=round(time.perf_counter() - t, 1),
        )
        row = {k: row.get(k) for k in COLUMNS}
        rows.append(row)
        _write(path, rows)
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        print(
            f"{stamp} {dataset}/{recipe}/seed{seed} {minutes:g} min: ratio trained {row['ratio_trained']:.3f} "
            f"random {row['ratio_random']:.3f} shift {row['target_shift']:.3f} "
            f"syn-only AUC {row['synthetic_only_val_auc']} ({row['eval_seconds']} s)",
            flush=True,
        )
    return f"{dataset}: {len(rows)} rows"


def evaluate(args: Any) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    for dataset in args.datasets:
        print(evaluate_dataset(dataset, args), flush=True)


# -- table -----------------------------------------------------------------------------------------
#: (column, label, direction): +1 higher is better, -1 lower is better, 0 descriptive only
MEASURES = (
    ("ratio_trained", "FD ratio, trained space", -1),
    ("ratio_random", "FD ratio, random-CNN space", -1),
    ("precision_synthetic_trained", "precision (trained)", 0),
    ("recall_synthetic_trained", "recall (trained)", 0),
    ("target_shift", "label shift", +1),
    ("synthetic_only_val_auc", "syn-only val AUC", +1),
)
DECISION = tuple(m for m in MEASURES if m[2] != 0)


def _stats(values: list[float]) -> tuple[float, float, int]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan"), int(v.size)


def _fmt(mean: float, sd: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "-"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if np.isfinite(sd) else f"{mean:.{digits}f}"


def compare(
    a: tuple[float, float, int], b: tuple[float, float, int], direction: int
) -> tuple[float, float, str]:
    """``a`` (the default) against ``b`` (an alternative), each (mean, sd over seeds, seeds): the signed gain
    of ``a`` (positive = ``a`` better), the noise (the larger of the two seed sds; the one there is when a
    recipe has a single seed) and a verdict: "default better" or "alternative better" when the gain exceeds
    the noise, else "within noise" ("no sd" when neither has two seeds)."""
    gain = direction * (a[0] - b[0])
    sds = [x for x in (a[1], b[1]) if np.isfinite(x)]
    noise = max(sds) if sds else float("nan")
    if not np.isfinite(gain):
        return gain, noise, "not measured"
    if not np.isfinite(noise):
        return gain, noise, "no sd"
    if gain > noise:
        return gain, noise, "default better"
    if -gain > noise:
        return gain, noise, "alternative better"
    return gain, noise, "within noise"


def table(args: Any) -> None:
    out = args.out
    rows = []
    for path in sorted(out.glob("seeds_*.csv")):
        for row in csv.DictReader(open(path)):
            text = ("dataset", "recipe", "floor_kind", "heldout", "gan_precision", "channels_last")
            rows.append({k: (v if k in text else ra._float(v))
                         for k, v in row.items()})  # fmt: skip
    rows = [r for r in rows if r["minutes"] == args.minutes]
    command = "PYTHONPATH=. python experiments/recipe_ablation_seeds.py table --out " + str(args.out)
    most = max((sum(1 for r in rows if (r["dataset"], r["recipe"]) == c) for c in
                {(r["dataset"], r["recipe"]) for r in rows}), default=0)  # fmt: skip
    lines = [
        f"# The recipe, re-decided: up to {most} GAN seeds per cell at {args.minutes:g} minutes (issue 20)",
        "",
        f"Generated by `{command}` from the `seeds_<set>.csv` files beside it (how they were made: README.md",
        "and COMMAND.md here). Every number is on the **validation** split (the test split is not read).",
        "Each cell: mean ± sd over the GAN training seeds (sd with n - 1; per-seed values in the CSVs). Only",
        "the GAN's training seed varies: the low-data subset (PneumoniaMNIST 10%) is subset seed 0's for",
        "every seed, and the extractor, generated sample (1,000 images) and classifiers are seeded alike.",
        "",
        "- **FD ratio** = FD(generated, val) / FD(real training images the GAN had, val), equal n, mean of",
        "  5 draws (`medgan_aug.metrics.heldout`): 1 = as close to new images as real training images are,",
        "  lower is better. *Trained*: the data set's extractor (fitted on train, selected on val, one per",
        "  data set, shared by every recipe and seed); *random*: the small CNN at a fixed random",
        "  initialisation (fitted on nothing).",
        "- **precision / recall**: generated vs val at the same n, trained space (real training images' own",
        "  values against val in the CSV: `precision_train_*`, `recall_train_*`).",
        "- **label shift**: label faithfulness, the extractor's mean score change when a label is switched",
        "  on at fixed noise (NIH1000: mean over effusion, infiltration, cardiomegaly, atelectasis;",
        "  PneumoniaMNIST: pneumonia). Higher is better.",
        "- **syn-only val AUC**: a small CNN trained 300 steps on 1,000 generated images alone, scored on val.",
        "",
    ]
    verdicts: dict[tuple[str, str, str], str] = {}
    for dataset in SEED_DATASETS:
        here = [r for r in rows if r["dataset"] == dataset]
        lines += [f"## {dataset}", ""]
        if not here:
            lines += ["not measured", ""]
            continue
        real = here[0]
        lines += [
            f"Held-out anchor n = {int(real['anchor_n'])}, floor: {real['floor_kind']}; extractor val AUC "
            f"{real['extractor_val_auc']:.3f}; real-only val AUC {real['real_only_val_auc']:.3f}; "
            f"iterations per GAN {int(real['iterations'])} ({real.get('gan_precision')}, channels-last "
            f"{real.get('channels_last')}).",
            "",
            "| recipe | seeds | " + " | ".join(m[1] for m in MEASURES) + " |",
            "|---|---|" + "---|" * len(MEASURES),
        ]
        stats: dict[str, dict[str, tuple[float, float, int]]] = {}
        for recipe in SEED_RECIPES:
            mine = [r for r in here if r["recipe"] == recipe]
            if not mine:
                lines.append(f"| {recipe} | none | " + " | ".join("-" for _ in MEASURES) + " |")
                continue
            stats[recipe] = {m[0]: _stats([r[m[0]] for r in mine]) for m in MEASURES}
            seeds = ",".join(str(int(s)) for s in sorted(r["seed"] for r in mine))
            cells = [
                _fmt(*stats[recipe][key][:2], 2 if key.startswith("ratio") else 3) for key, _, _ in MEASURES
            ]
            lines.append(f"| {recipe} | {seeds} | " + " | ".join(cells) + " |")
        lines.append("")
        if DEFAULT_RECIPE in stats:
            lines += [
                "Default against each alternative (gain of the default, signed so that positive = default "
                "better; noise = the larger of the two seed sds):",
                "",
                "| alternative | " + " | ".join(m[1] for m in DECISION) + " |",
                "|---|" + "---|" * len(DECISION),
            ]
            for alt in SIMPLER:
                if alt not in stats:
                    continue
                cells = []
                for key, _, direction in DECISION:
                    gain, noise, verdict = compare(stats[DEFAULT_RECIPE][key], stats[alt][key], direction)
                    verdicts[(dataset, alt, key)] = verdict
                    digits = 2 if key.startswith("ratio") else 3
                    cells.append(f"{gain:+.{digits}f} (noise {noise:.{digits}f}): {verdict}")
                lines.append(f"| {alt} | " + " | ".join(cells) + " |")
            lines.append("")

    # the rule of issue 20: keep the default only if it wins beyond the seed sd; otherwise the simpler recipe
    # that is not worse beyond noise
    lines += ["## The rule applied", ""]
    measured = sorted({d for d, _, _ in verdicts})
    missing = [d for d in SEED_DATASETS if d not in measured]
    if missing:
        lines += [
            f"Not measured: {', '.join(missing)}. The rule below covers {', '.join(measured) or 'nothing'} "
            "only, and cannot settle the recipe for the data sets that are missing.",
            "",
        ]
    for alt in SIMPLER:
        mine = {k: v for k, v in verdicts.items() if k[1] == alt}
        worse = [f"{d} {k}" for (d, _, k), v in mine.items() if v == "default better"]
        better = [f"{d} {k}" for (d, _, k), v in mine.items() if v == "alternative better"]
        lines.append(
            f"- **{alt}** vs the default: the default is better beyond noise on "
            f"{len(worse)} of {len(mine)} (data set, measure) pairs"
            + (f" ({', '.join(worse)})" if worse else "")
            + f"; {alt} is better beyond noise on {len(better)}"
            + (f" ({', '.join(better)})" if better else "")
            + "."
        )
    # an alternative qualifies only if it was compared, with an sd, on every measure of every measured set
    not_worse = [
        a
        for a in SIMPLER
        if all(
            verdicts.get((d, a, m[0])) in ("within noise", "alternative better")
            for d in measured
            for m in DECISION
        )
        and measured
    ]
    undecided = [
        a
        for a in SIMPLER
        if a not in not_worse and not any(v == "default better" for k, v in verdicts.items() if k[1] == a)
    ]
    lines.append("")
    if not_worse:
        lines.append(
            f"Verdict: the default does not win beyond the seed sd against {', '.join(not_worse)}, which is "
            "not worse beyond noise on any decision measure: by the rule, the simpler recipe is preferred."
        )
    elif undecided:
        lines.append(
            f"Verdict: none, {', '.join(undecided)} lacks a comparison with an sd on some measured set and "
            "measure (missing seeds or cells); the default is not shown to win beyond noise either."
        )
    else:
        lines.append(
            "Verdict: each simpler recipe is worse than the default beyond the seed sd on at least one "
            "decision measure: by the rule, the default (ADA + AC-GAN) stays."
        )
    lines.append("")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print((out / "table.md").read_text())


def test_table(args: Any) -> None:
    """``<out>/test_table.md``: the chosen recipe once on the test split (mean ± sd over GAN seeds), with the
    real training images' own precision/recall against test beside the generated images' ones."""
    rows = []
    for path in sorted(args.out.glob("test_*.csv")):
        for row in csv.DictReader(open(path)):
            text = ("dataset", "recipe", "floor_kind", "heldout", "gan_precision", "channels_last")
            rows.append({k: (v if k in text else ra._float(v)) for k, v in row.items()})
    rows = [r for r in rows if r["minutes"] == args.minutes]
    command = "PYTHONPATH=. python experiments/recipe_ablation_seeds.py test-table --out " + str(args.out)
    measures = (
        *MEASURES[:2],
        ("fd_train_trained", "FD real train vs test, trained", 0),
        ("fd_floor_trained", "FD floor (two training halves, by patient where ids exist), trained", 0),
        *MEASURES[2:4],
        ("precision_train_trained", "precision of real train (trained)", 0),
        ("recall_train_trained", "recall of real train (trained)", 0),
        MEASURES[4],
        ("synthetic_only_val_auc", "syn-only test AUC", 0),  # the column keeps its name; it holds test here
        ("real_only_val_auc", "real-only test AUC", 0),
    )
    lines = [
        f"# The chosen recipe on the test split, once ({args.minutes:g} minutes, issue 20)",
        "",
        f"Generated by `{command}` from the `test_<set>.csv` files beside it (COMMAND.md: how). Same",
        "instrument and seeds as table.md, with **test** as the held-out split (the extractor is the one",
        'fitted on train and selected on val). Mean ± sd over GAN training seeds. "syn-only" and',
        '"real-only" AUCs are on test here.',
        "",
        "| data set | recipe | seeds | anchor n | " + " | ".join(m[1] for m in measures) + " |",
        "|---|---|---|---|" + "---|" * len(measures),
    ]
    for dataset in SEED_DATASETS:
        for recipe in SEED_RECIPES:
            mine = [r for r in rows if (r["dataset"], r["recipe"]) == (dataset, recipe)]
            if not mine:
                continue
            seeds = ",".join(str(int(s)) for s in sorted(r["seed"] for r in mine))
            cells = []
            for key, _, _ in measures:
                mean, sd, _ = _stats([r[key] for r in mine if r.get(key) is not None])
                cells.append(_fmt(mean, sd, 2 if key.startswith(("ratio", "fd")) else 3))
            lines.append(
                f"| {dataset} | {recipe} | {seeds} | {int(mine[0]['anchor_n'])} | " + " | ".join(cells) + " |"
            )
    (args.out / "test_table.md").write_text("\n".join(lines) + "\n")
    print((args.out / "test_table.md").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--runs", type=Path, required=True)
    t.add_argument("--calibration", type=Path, required=True)
    t.add_argument("--device", default="cpu")
    t.add_argument("--workers", type=int, default=1)
    t.add_argument("--datasets", nargs="+", default=list(SEED_DATASETS))
    t.add_argument("--recipes", nargs="+", default=list(SEED_RECIPES))
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    t.add_argument("--minutes", type=float, nargs="+", default=[ra.TABLE_MINUTES])
    t.add_argument("--checkpoint-every", type=int, default=500, help="for resuming an interrupted run")
    t.add_argument(
        "--order",
        choices=("seed", "dataset"),
        default="seed",
        help="seed: every (data set, recipe) of seed 0 first, then seed 1, ...; dataset: the data sets one "
        "after another (in --datasets order), seed-major within each; either way one pool of --workers",
    )
    t.add_argument("--deadline", type=float, default=1e9, help="seconds after which no run starts")
    t.add_argument(
        "--precision",
        choices=("bf16", "fp32", "auto"),
        default=None,
        help="override the recipes' precision (default: theirs, bf16 for the *_fast recipes); fp32 where the "
        "CPU has no native bf16 (no AVX512-BF16 / AMX: emulated bf16 is ~18x slower there), at the same "
        "iteration budget",
    )
    e = sub.add_parser("evaluate")
    e.add_argument("--runs", type=Path, required=True)
    e.add_argument("--calibration", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--datasets", nargs="+", default=list(SEED_DATASETS))
    e.add_argument("--recipes", nargs="+", default=list(SEED_RECIPES))
    e.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    e.add_argument("--minutes", type=float, nargs="+", default=[ra.TABLE_MINUTES])
    e.add_argument("--num-samples", type=int, default=1000)
    e.add_argument("--clf-iterations", type=int, default=300)
    e.add_argument("--extractor-iterations", type=int, default=1000)
    e.add_argument("--repeats", type=int, default=5, help="draws of the held-out-anchored distances")
    e.add_argument("--kid-subsets", type=int, default=50)
    e.add_argument("--device", default="cpu")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument(
        "--heldout",
        choices=("val", "test"),
        default="val",
        help="val while choosing (seeds_<set>.csv); test once, for the chosen recipe (test_<set>.csv)",
    )
    tb = sub.add_parser("table")
    tb.add_argument("--out", type=Path, required=True)
    tb.add_argument("--minutes", type=float, default=ra.TABLE_MINUTES)
    tt = sub.add_parser("test-table", help="test_table.md from the test_<set>.csv files (the chosen recipe)")
    tt.add_argument("--out", type=Path, required=True)
    tt.add_argument("--minutes", type=float, default=ra.TABLE_MINUTES)
    args = parser.parse_args()
    {"train": train, "evaluate": evaluate, "table": table, "test-table": test_table}[args.command](args)


if __name__ == "__main__":
    main()
