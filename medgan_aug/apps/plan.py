"""Sizing a study before it runs: how many seeds a target ΔAUC needs, from a per-seed sd or a pilot study.

The per-seed sd of ΔAUC is the number that decides a study's power (:mod:`medgan_aug.metrics.power`). It is
given directly (``sd``), or read from a finished (pilot) study's ``results.csv``: per fraction, classifier and
comparison (every condition against ``real``, ``real+synthetic@R`` against ``real+shuffled@R``), the per-seed
ΔAUC (classifier seeds averaged within a study seed, as the summary does) and their sd.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from medgan_aug.apps.study.comparisons import comparison_pairs
from medgan_aug.metrics.power import minimum_detectable_effect, seeds_needed

__all__ = ["pilot_comparisons", "seed_plan"]


def pilot_comparisons(results: str | os.PathLike) -> list[dict[str, Any]]:
    """Per-seed ΔAUC of every comparison in a finished study's ``results.csv`` (or its folder).

    Returns:
        one dict per (fraction, classifier, condition, baseline) with two seeds or more: ``per_seed`` (seed ->
        ΔAUC), ``sd`` (ddof 1) and ``n_seeds``.

    Raises:
        FileNotFoundError: no results.csv there. ValueError: it lacks the columns a study writes.
    """
    path = Path(results)
    path = path / "results.csv" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: give a study folder or its results.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    needed = {"fraction", "seed", "condition", "classifier", "auc"}
    missing = needed - set(rows[0] if rows else ())
    if missing:
        raise ValueError(f"{path} is not a study's results.csv: no column(s) {sorted(missing)} (or no rows)")
    auc: dict[tuple[str, str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        auc[(row["fraction"], row["classifier"], row["condition"])][int(row["seed"])].append(
            float(row["auc"])
        )
    found = []
    for fraction, classifier in sorted({(f, k) for f, k, _ in auc}, key=lambda x: (float(x[0]), x[1])):
        conditions = {c for f, k, c in auc if (f, k) == (fraction, classifier)}
        for condition, baseline, _ in comparison_pairs(sorted(conditions)):
            arm, base = auc[(fraction, classifier, condition)], auc[(fraction, classifier, baseline)]
            seeds = sorted(set(arm) & set(base))
            if len(seeds) < 2:
                continue
            per_seed = {s: float(np.mean(arm[s]) - np.mean(base[s])) for s in seeds}
            found.append(
                dict(
                    fraction=float(fraction),
                    classifier=classifier,
                    condition=condition,
                    baseline=baseline,
                    per_seed=per_seed,
                    sd=float(np.std(list(per_seed.values()), ddof=1)),
                    n_seeds=len(seeds),
                )
            )
    return found


def seed_plan(effect: float, sd: float, n_seeds: int | None = None, power: float = 0.8) -> dict[str, Any]:
    """Seeds needed to detect ``effect`` given a per-seed ``sd``, and what ``n_seeds`` seeds would detect.

    Returns:
        dict with ``effect``, ``sd``, ``power``, ``seeds_needed`` and, with ``n_seeds``, ``n_seeds`` and
        ``detectable`` (the minimum detectable effect with that many seeds).
    """
    plan: dict[str, Any] = {"effect": effect, "sd": sd, "power": power}
    plan["seeds_needed"] = seeds_needed(effect, sd, power=power) if sd > 0 else 2
    if n_seeds is not None:
        plan["n_seeds"] = n_seeds
        plan["detectable"] = minimum_detectable_effect(sd, n_seeds, power=power)
    return plan
