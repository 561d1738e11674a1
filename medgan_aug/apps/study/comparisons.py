"""The study's comparisons, with seed-level inference: what ``summary.md`` reports about differences.

* Comparisons: every condition against ``real``, and every ``real+synthetic@R...`` against
  ``real+shuffled@R...`` (the same generated images with their labels permuted: the placebo) where both ran.
  A gain counts as label information only where ``real+synthetic@R`` beats ``real+shuffled@R``.
* Each comparison, per fraction and classifier: ΔAUC per study seed (classifier seeds averaged within a
  study seed), their mean, a 95% two-level bootstrap interval (study seeds, then test images:
  :func:`medgan_aug.metrics.hierarchical_paired_bootstrap_delta`), the images-only interval beside it, a
  paired t-interval over the per-seed deltas as a cross-check, and a two-sided bootstrap p-value.
* The primary comparison (config ``primary``), declared before the results, pools its fractions (mean of
  the per-fraction deltas, replicate by replicate) and gets a verdict at 95%. Every other comparison is
  exploratory: its p-value is Holm-adjusted over all of them (Holm 1979) and it is called a gain or a loss
  only when the adjusted p-value is below 0.05.
* Test images come from patients: where the scores files carry the test images' patient ids, the test level
  of every bootstrap resamples patients, not images (cluster bootstrap, Field & Welsh 2007); ``unit`` says
  which.
* Every comparison carries its minimum detectable effect at 80% power (``mde``): a "no detectable
  difference" is read beside the effect the study could have found (:mod:`medgan_aug.metrics.power`).
* Variance components (when a study seed has several classifier seeds): AUC variance between study seeds
  (GAN + subset) and within them (classifier seed), by one-way random-effects ANOVA estimators.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from medgan_aug.apps.study.folder import read_scores
from medgan_aug.metrics.hierarchical_bootstrap import hierarchical_paired_bootstrap_delta
from medgan_aug.metrics.inference import (
    bootstrap_p_value,
    holm_adjust,
    paired_t_interval,
    percentile_interval,
    variance_components,
)
from medgan_aug.metrics.power import minimum_detectable_effect

__all__ = [
    "ALPHA",
    "classifier_seed_of",
    "study_cells",
    "comparison_pairs",
    "verdict",
    "detectable_effect",
    "compare_conditions",
    "pool_primary",
    "variance_table",
]

#: Level of the primary verdict (95% interval) and of the Holm-adjusted exploratory calls.
ALPHA = 0.05

Cells = dict[tuple[float, str, str], dict[int, dict[int, dict[str, Any]]]]


def classifier_seed_of(row: dict[str, Any]) -> int:
    """A run's classifier seed: its ``classifier_seed`` entry, 0 for results written before it existed."""
    value = row.get("classifier_seed")
    return 0 if value in (None, "") else int(value)


def study_cells(rows: list[dict[str, Any]]) -> Cells:
    """Runs by (fraction, condition, classifier), then study seed, then classifier seed."""
    cells: Cells = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        cell = cells[(row["fraction"], row["condition"], row["classifier"])]
        cell[int(row["seed"])][classifier_seed_of(row)] = row
    return cells


def comparison_pairs(conditions: list[str]) -> list[tuple[str, str, str]]:
    """(condition, baseline, kind) of every comparison among ``conditions``: each against ``real`` ("vs
    real"), each ``real+synthetic@...`` against its ``real+shuffled@...`` twin ("placebo"), and each arm with
    generated images (``real+synthetic@...``, ``synthetic-pretrain...``) against every ``real+pseudo@...`` arm
    ("vs pseudo": does the generator add anything over pseudo-labelled real images, issue 21)."""
    present = set(conditions)
    pairs = [(c, "real", "vs real") for c in conditions if c != "real" and "real" in present]
    for condition in conditions:
        if condition.startswith("real+synthetic@"):
            placebo = "real+shuffled@" + condition[len("real+synthetic@") :]
            if placebo in present:
                pairs.append((condition, placebo, "placebo"))
    rivals = [c for c in conditions if c.startswith("real+pseudo@")]
    for condition in conditions:
        if condition.startswith(("real+synthetic@", "synthetic-pretrain")):
            pairs += [(condition, rival, "vs pseudo") for rival in rivals]
    return pairs


def verdict(low: float, high: float) -> str:
    """ "gain" or "loss" when the interval excludes zero, else "no detectable difference"."""
    return "gain" if low > 0 else "loss" if high < 0 else "no detectable difference"


class _Scores:
    """Test scores of finished runs, read once per run (``scores/<key>.npz``): scores, targets and, where the
    data file knew them, the test images' patient ids (None otherwise)."""

    def __init__(self, out: Path) -> None:
        self.out, self.cache = out, {}

    def __call__(self, row: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        key = row["key"]
        if key not in self.cache:
            self.cache[key] = read_scores(self.out, key)  # a damaged file: one line naming it
        return self.cache[key]


def detectable_effect(per_seed: list[float]) -> float:
    """The minimum detectable effect at 80% power (two-sided, 5%) from the per-seed deltas' sd and their
    number (:func:`medgan_aug.metrics.power.minimum_detectable_effect`); NaN with fewer than two seeds."""
    values = np.asarray(per_seed, dtype=np.float64)
    if values.size < 2 or not np.isfinite(values).all():
        return float("nan")
    return minimum_detectable_effect(float(values.std(ddof=1)), int(values.size), alpha=ALPHA)


def _same_ids(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Both runs without patient ids, or both with the same ones."""
    return (a is None) == (b is None) and (a is None or np.array_equal(a, b))


def _compare(
    scores: _Scores, baseline: dict[int, dict[int, dict]], arm: dict[int, dict[int, dict]], n_boot: int
) -> dict[str, Any] | None:
    """One comparison on the study seeds both arms have; None when they share none."""
    seeds = sorted(set(baseline) & set(arm))
    if not seeds:
        return None
    targets, patients, first = None, None, None
    nested: list[list[list[np.ndarray]]] = [[], []]
    for side, cell in enumerate((baseline, arm)):
        for seed in seeds:
            runs = []
            for _, row in sorted(cell[seed].items()):
                s, t, p = scores(row)
                if targets is None:
                    targets, patients, first = t, p, row["key"]
                elif not np.array_equal(targets, t) or not _same_ids(patients, p):
                    raise ValueError(f"runs {first} and {row['key']} were scored on different test sets")
                runs.append(s)
            nested[side].append(runs)
    task = next(iter(arm[seeds[0]].values()))["task"]
    common = dict(n_boot=n_boot, seed=0, task=task, clusters=patients)
    two = hierarchical_paired_bootstrap_delta(targets, nested[0], nested[1], **common)
    images = hierarchical_paired_bootstrap_delta(
        targets, nested[0], nested[1], resample_seeds=False, **common
    )
    t_low, t_high = paired_t_interval(two["per_seed_delta"], 1 - ALPHA)
    return {
        "seeds": seeds,
        "n_classifier_seeds": sorted({len(r) for side in nested for r in side}),
        "delta": two["delta"],
        "ci_low": two["ci_low"],
        "ci_high": two["ci_high"],
        "p_value": two["p_value"],
        "replicates": two["replicates"],
        "images_ci_low": images["ci_low"],
        "images_ci_high": images["ci_high"],
        "per_seed": dict(zip(seeds, two["per_seed_delta"])),
        "t_low": t_low,
        "t_high": t_high,
        "mde": detectable_effect(two["per_seed_delta"]),
        "unit": two["resampled_unit"],
        "n_units": two["n_clusters"],
    }


def pool_primary(comparisons: list[dict[str, Any]], primary: dict[str, Any]) -> dict[str, Any]:
    """The primary comparison pooled over its fractions, from the per-fraction comparisons.

    The pooled delta is the mean over the fractions of the per-fraction deltas; its bootstrap replicates
    are the means of the per-fraction replicates, replicate by replicate (the per-fraction bootstraps share
    their draws of seeds and test images, so the fractions' dependence is kept); the verdict reads the 95%
    percentile interval. Per-seed deltas are averaged over the fractions for the seeds present in all of
    them, and give the paired t-interval.

    Args:
        comparisons: per-fraction comparisons (:func:`compare_conditions` entries).
        primary: the config's ``primary`` (condition, baseline, fractions, classifier).

    Returns:
        dict with the primary's settings, ``missing_fractions`` and, when none is missing, ``delta``,
        ``ci_low``, ``ci_high``, ``p_value``, ``per_seed``, ``t_low``, ``t_high``, ``n_seeds``, ``verdict``.
    """
    fractions = [float(f) for f in primary["fractions"]]
    found = {
        e["fraction"]: e
        for e in comparisons
        if (e["condition"], e["baseline"], e["classifier"])
        == (primary["condition"], primary["baseline"], primary["classifier"])
    }
    result = {
        **primary,
        "fractions": fractions,
        "missing_fractions": [f for f in fractions if f not in found],
    }
    if result["missing_fractions"]:
        return result
    parts = [found[f] for f in fractions]
    replicates = np.mean([p["replicates"] for p in parts], axis=0)
    low, high = percentile_interval(replicates, 1 - ALPHA)
    seeds = sorted(set.intersection(*(set(p["per_seed"]) for p in parts)))
    per_seed = {s: float(np.mean([p["per_seed"][s] for p in parts])) for s in seeds}
    t_low, t_high = paired_t_interval(list(per_seed.values()), 1 - ALPHA)
    result.update(
        delta=float(np.mean([p["delta"] for p in parts])),
        ci_low=low,
        ci_high=high,
        p_value=bootstrap_p_value(replicates),
        per_seed=per_seed,
        t_low=t_low,
        t_high=t_high,
        n_seeds=min(len(p["seeds"]) for p in parts),
        verdict=verdict(low, high),
        mde=detectable_effect(list(per_seed.values())),
        unit=parts[0]["unit"],
        n_units=parts[0]["n_units"],
    )
    return result


def compare_conditions(
    out: str | os.PathLike, rows: list[dict[str, Any]], *, n_boot: int = 1000, primary: dict | None = None
) -> dict[str, Any]:
    """Every comparison of the finished runs in ``out``, the primary one pooled, the others Holm-adjusted.

    Args:
        out: the study folder (scores are read from ``out/scores``).
        rows: the runs' records (:func:`medgan_aug.apps.study.summary.collect_runs`).
        n_boot: bootstrap replicates per interval.
        primary: the config's checked ``primary`` (empty or None: every comparison is exploratory).

    Returns:
        dict with ``comparisons`` (one entry per fraction, classifier and comparison: ``fraction``,
        ``classifier``, ``condition``, ``baseline``, ``kind``, the numbers of the module docstring,
        ``p_holm`` and ``reading``) and ``primary`` (:func:`pool_primary`, or None).
    """
    cells = study_cells(rows)
    scores = _Scores(Path(out))
    conditions = list(dict.fromkeys(row["condition"] for row in rows))
    comparisons = []
    for fraction, classifier in sorted({(f, k) for f, _, k in cells}):
        for condition, baseline, kind in comparison_pairs(conditions):
            if (fraction, condition, classifier) not in cells or (
                fraction,
                baseline,
                classifier,
            ) not in cells:
                continue
            numbers = _compare(
                scores,
                cells[(fraction, baseline, classifier)],
                cells[(fraction, condition, classifier)],
                n_boot,
            )
            if numbers is not None:
                comparisons.append(
                    dict(
                        fraction=fraction,
                        classifier=classifier,
                        condition=condition,
                        baseline=baseline,
                        kind=kind,
                    )
                    | numbers
                )
    for entry, p_holm in zip(comparisons, holm_adjust([e["p_value"] for e in comparisons])):
        entry["p_holm"] = p_holm
        significant = p_holm < ALPHA
        entry["reading"] = (
            ("gain" if entry["delta"] > 0 else "loss") if significant else "no detectable difference"
        )
    return {"comparisons": comparisons, "primary": pool_primary(comparisons, primary) if primary else None}


def variance_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """AUC variance between study seeds and within them (classifier seeds), per fraction, condition and
    classifier, for the cells with two study seeds or more and a study seed with two classifier seeds or
    more (:func:`medgan_aug.metrics.variance_components`)."""
    table = []
    for (fraction, condition, classifier), by_seed in sorted(study_cells(rows).items()):
        groups = [[row["auc"] for row in runs.values()] for _, runs in sorted(by_seed.items())]
        if len(groups) < 2 or max(len(g) for g in groups) < 2:
            continue
        table.append(
            dict(
                fraction=fraction, condition=condition, classifier=classifier, sizes=[len(g) for g in groups]
            )
            | variance_components(groups)
        )
    return table
