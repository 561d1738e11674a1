"""experiments/recipe_ablation_seeds.py's tables: the test-split table (read once, for the chosen recipe)."""

from __future__ import annotations

import argparse
import csv

from engine_helpers import load_script

seeds = load_script("experiments/recipe_ablation_seeds.py")


def test_the_test_table_gives_mean_and_sd_over_seeds_and_names_test_aucs(tmp_path):
    columns = list(seeds.COLUMNS)
    rows = []
    for seed, ratio, auc in ((0, 0.5, 0.90), (1, 0.7, 0.94), (2, 0.9, 0.92)):
        row = {k: 1.0 for k in columns}
        row.update(dataset="pneumonia_100", recipe="ada_acgan_fast", seed=seed, minutes=5, heldout="test",
                   floor_kind="random training halves", gan_precision="fp32", channels_last="True",
                   anchor_n=621, ratio_trained=ratio, synthetic_only_val_auc=auc, fd_train_trained=3.5)  # fmt: skip
        rows.append(row)
    with open(tmp_path / "test_pneumonia_100.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    seeds.test_table(argparse.Namespace(out=tmp_path, minutes=5.0))
    text = (tmp_path / "test_table.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| data set"))
    assert "syn-only test AUC" in header and "real-only test AUC" in header and "val AUC" not in header
    assert "FD real train vs test, trained" in header
    line = next(line for line in text.splitlines() if line.startswith("| pneumonia_100"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    named = dict(zip([c.strip() for c in header.strip("|").split("|")], cells))
    assert named["seeds"] == "0,1,2" and named["anchor n"] == "621"
    assert named["FD ratio, trained space"] == "0.70 ± 0.20"  # mean and sd (n - 1) over the three seeds
    assert named["syn-only test AUC"] == "0.920 ± 0.020"
    assert named["FD real train vs test, trained"] == "3.50 ± 0.00"
