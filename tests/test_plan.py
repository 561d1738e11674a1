"""``medgan-aug plan``: seeds needed for a target ΔAUC, from a per-seed sd or a pilot study's results.csv."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from medgan_aug.apps.plan import pilot_comparisons, seed_plan
from medgan_aug.cli import main
from medgan_aug.metrics.power import minimum_detectable_effect, seeds_needed


def _results(path, aucs):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["fraction", "seed", "classifier_seed", "condition", "classifier", "auc"])
        writer.writeheader()
        for (condition, seed, classifier_seed), auc in aucs.items():
            writer.writerow(
                dict(
                    fraction=0.1,
                    seed=seed,
                    classifier_seed=classifier_seed,
                    condition=condition,
                    classifier="small_cnn",
                    auc=auc,
                )
            )
    return path


def test_pilot_per_seed_deltas_average_classifier_seeds_and_pair_the_placebo(tmp_path):
    aucs = {("real", s, c): 0.60 + 0.01 * s + 0.002 * c for s in range(3) for c in range(2)}
    aucs |= {("real+synthetic@0.5", s, 0): 0.62 + 0.02 * s for s in range(3)}
    aucs |= {("real+shuffled@0.5", s, 0): 0.61 for s in range(3)}
    found = pilot_comparisons(_results(tmp_path / "results.csv", aucs))
    by_name = {(c["condition"], c["baseline"]): c for c in found}
    synthetic = by_name[("real+synthetic@0.5", "real")]
    expected = [0.62 + 0.02 * s - (0.60 + 0.01 * s + 0.001) for s in range(3)]
    assert list(synthetic["per_seed"].values()) == pytest.approx(expected)
    assert synthetic["sd"] == pytest.approx(np.std(expected, ddof=1)) and synthetic["n_seeds"] == 3
    placebo = by_name[("real+synthetic@0.5", "real+shuffled@0.5")]
    assert list(placebo["per_seed"].values()) == pytest.approx([0.01, 0.03, 0.05])
    assert pilot_comparisons(tmp_path) == found  # a study folder works too


def test_plan_numbers_and_cli_lines(tmp_path, capsys):
    plan = seed_plan(0.03, 0.031, 5)
    assert plan["seeds_needed"] == seeds_needed(0.03, 0.031) == 11
    assert plan["detectable"] == pytest.approx(minimum_detectable_effect(0.031, 5))
    assert main(["plan", "--effect", "0.03", "--sd", "0.031"]) == 0
    assert "11 seeds detect ΔAUC 0.03 with 80% power; 5 seeds detect >= 0.0521" in capsys.readouterr().out
    aucs = {("real", s, 0): 0.6 for s in range(4)} | {("real+mixup", s, 0): 0.6 + 0.01 * s for s in range(4)}
    assert main(["plan", "--effect", "0.02", "--from", str(_results(tmp_path / "r.csv", aucs))]) == 0
    out = capsys.readouterr().out.splitlines()
    sd = np.std([0, 0.01, 0.02, 0.03], ddof=1)
    assert out[1].split()[-4:] == [
        f"{sd:.4f}",
        ">=",
        f"{minimum_detectable_effect(sd, 4):.4f}",
        str(seeds_needed(0.02, sd)),
    ]


def test_plan_errors_are_one_line(tmp_path, capsys):
    assert main(["plan", "--effect", "0.03", "--from", str(tmp_path / "none")]) == 1
    assert "none does not exist: give a study folder or its results.csv" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    assert main(["plan", "--effect", "0.03", "--from", str(tmp_path / "bad.csv")]) == 1
    assert "is not a study's results.csv" in capsys.readouterr().err
    assert main(["plan", "--effect", "-1", "--sd", "0.03"]) == 1
    assert "effect must be a finite number > 0" in capsys.readouterr().err
