"""summary.md's inference on a tiny study folder written by hand (runs/*.json, scores/*.npz, no training):
the primary verdict, exploratory rows with Holm-adjusted p-values, the placebo comparison, classifier seeds
and the variance between and within study seeds; the config's ``primary`` key."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from medgan_aug.apps.study.comparisons import (
    compare_conditions,
    comparison_pairs,
    variance_table,
)
from medgan_aug.apps.study.config import expand_grid, load_study_config, run_key
from medgan_aug.apps.study.summary import collect_runs, compare_to_real, write_summary
from medgan_aug.metrics.classification import evaluate_scores
from medgan_aug.metrics.inference import holm_adjust

N_TEST, LABELS = 160, 3
TARGETS = (np.random.default_rng(0).random((N_TEST, LABELS)) < 0.3).astype(np.uint8)


def _scores(signal: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(0.25 + signal * TARGETS + rng.normal(0, 0.2, TARGETS.shape), 0, 1).astype(np.float32)


def _write_run(
    out: Path,
    key: str,
    fraction: float,
    seed: int,
    condition: str,
    scores: np.ndarray,
    patients: np.ndarray | None = None,
    **extra,
) -> dict:
    metrics = evaluate_scores(TARGETS, scores)
    row = {
        "key": key,
        "study": "tiny",
        "fraction": fraction,
        "seed": seed,
        "condition": condition,
        "classifier": "small_cnn",
        "data_file": "fake.npz",
        "flag": "chestmnist",
        "task": "multi-label, binary-class",
        "image_size": 28,
        "n_train": int(1000 * fraction),
        "n_test": N_TEST,
        "synthetic_ratio": 0.5 if "synthetic" in condition or "shuffled" in condition else 0.0,
        "classical": False,
        "auc": metrics["auc"],
        "acc": metrics["acc"],
        "per_label_auc": metrics["auc_per_label"],
        "skipped_labels": [],
        "label_names": [str(j) for j in range(LABELS)],
        "classifier_iterations": 10,
        "classifier_batch_size": 8,
        "classifier_seconds": 0.1,
        "gan_dir": None,
        "gan_seconds": None,
        "gan_iterations": None,
        "num_synthetic": 0,
        **extra,
    }
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "scores").mkdir(parents=True, exist_ok=True)
    stored = {} if patients is None else {"patients": patients}
    np.savez(out / "scores" / f"{key}.npz", scores=scores, targets=TARGETS, **stored)
    (out / "runs" / f"{key}.json").write_text(json.dumps(row))
    return row


def tiny_study(
    tmp_path: Path,
    chest28_path: Path,
    signal: dict[str, float],
    primary: dict | None = None,
    patients: np.ndarray | None = None,
):
    """A config's grid (2 fractions x 4 seeds x 3 conditions) with hand-made scores: ``signal`` per condition."""
    config = load_study_config("quick", path=str(chest28_path))
    config.fractions, config.seeds = [0.25, 1.0], [0, 1, 2, 3]
    config.conditions = list(signal)
    config.bootstrap = {"n_boot": 400}
    if primary is not None:
        config.primary = primary
        config.__post_init__()
    out = tmp_path / "study"
    for i, run in enumerate(expand_grid(config)):
        scores = _scores(signal[run.condition] + 0.02 * run.seed, seed=1000 * run.seed + i)
        _write_run(out, run_key(config, run), run.fraction, run.seed, run.condition, scores, patients)
    return config, out


def test_primary_gain_appears_with_its_verdict_and_every_other_row_is_exploratory(tmp_path, chest28_path):
    signal = {"real": 0.3, "real+synthetic@0.5": 0.45, "real+classical": 0.3}
    config, out = tiny_study(tmp_path, chest28_path, signal, primary={"condition": "real+synthetic@0.5"})
    assert config.primary == {
        "condition": "real+synthetic@0.5",
        "baseline": "real",
        "fractions": [0.25, 1.0],
        "classifier": "small_cnn",
    }
    summary = write_summary(config, out).read_text()
    assert "## Primary comparison" in summary and "Verdict at 95%: gain" in summary
    assert "4 study seeds" in summary and "s3 " in summary  # per-seed deltas beside the pooled figure
    assert "Holm-adjusted over all 4 exploratory comparisons" in summary  # 2 fractions x 2 vs real
    assert "ΔAUC vs real" in summary and "(in the primary)" in summary and "exploratory" in summary
    assert "This study has no `real+shuffled@R` condition" in summary
    assert "## AUC variance" not in summary  # one classifier seed per study seed
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {r["classifier_seed"] for r in rows} == {"0"}  # absent in the records: 0
    for figure in ("auc_vs_fraction.png", "delta_auc_vs_fraction.png"):
        assert (out / figure).stat().st_size > 5000

    result = compare_conditions(out, collect_runs(out), n_boot=400, primary=config.primary)
    comparisons, primary = result["comparisons"], result["primary"]
    assert [c["p_holm"] for c in comparisons] == pytest.approx(
        holm_adjust([c["p_value"] for c in comparisons])
    )
    parts = [c for c in comparisons if c["condition"] == "real+synthetic@0.5"]
    assert primary["delta"] == pytest.approx(np.mean([c["delta"] for c in parts]))
    assert primary["ci_low"] > 0 and primary["verdict"] == "gain"
    assert f"**ΔAUC {primary['delta']:+.3f}" in summary
    classical = [c for c in comparisons if c["condition"] == "real+classical"]
    assert all(c["reading"] == "no detectable difference" for c in classical)
    for c in comparisons:  # per-seed deltas are the AUC differences of the runs
        assert c["delta"] == pytest.approx(np.mean(list(c["per_seed"].values())))
        assert c["ci_high"] - c["ci_low"] > c["images_ci_high"] - c["images_ci_low"]  # seed offsets differ
    # the former table API still gives ΔAUC vs real, now with the two-level interval
    table = compare_to_real(out, collect_runs(out), n_boot=400)
    synthetic = next(e for e in table if e["condition"] == "real+synthetic@0.5" and e["fraction"] == 1.0)
    assert synthetic["delta"] == pytest.approx(parts[1]["delta"]) and synthetic["verdict"] == "gain"


@pytest.mark.parametrize(
    "arm,expected",
    [(0.3, "no detectable difference (the 95% interval contains zero; could detect ≥ "), (0.15, "loss")],
)
def test_primary_without_a_gain_says_so(tmp_path, chest28_path, arm, expected):
    signal = {"real": 0.3, "real+synthetic@0.5": arm}
    primary = {"condition": "real+synthetic@0.5", "fractions": [0.25]}
    config, out = tiny_study(tmp_path, chest28_path, signal, primary=primary)
    summary = write_summary(config, out).read_text()
    assert f"Verdict at 95%: {expected}" in summary
    assert "pooled over fractions 0.25 " in summary


def test_no_primary_declared_makes_everything_exploratory(tmp_path, chest28_path):
    config, out = tiny_study(tmp_path, chest28_path, {"real": 0.3, "real+synthetic@0.5": 0.3})
    summary = write_summary(config, out).read_text()
    assert "No primary comparison is declared" in summary and "Verdict at 95%" not in summary


def test_placebo_comparison_and_classifier_seeds(tmp_path):
    """real+synthetic@0.5 vs real+shuffled@0.5 is compared; study seeds with 3 classifier seeds each are
    averaged per study seed, and the variance splits into between and within study seeds."""
    out = tmp_path / "study"
    rows, signal = [], {"real": 0.3, "real+synthetic@0.5": 0.4, "real+shuffled@0.5": 0.38}
    for seed in range(3):
        for cseed in range(3):
            for condition, s in signal.items():
                key = f"{condition}-{seed}-{cseed}".replace("+", "_").replace("@", "_")
                scores = _scores(s + 0.05 * seed, seed=100 * seed + 10 * cseed + len(condition))
                rows.append(_write_run(out, key, 0.25, seed, condition, scores, classifier_seed=cseed))
    assert comparison_pairs(list(signal)) == [
        ("real+synthetic@0.5", "real", "vs real"),
        ("real+shuffled@0.5", "real", "vs real"),
        ("real+synthetic@0.5", "real+shuffled@0.5", "placebo"),
    ]
    result = compare_conditions(out, rows, n_boot=200)
    placebo = next(c for c in result["comparisons"] if c["kind"] == "placebo")
    by = {(r["condition"], r["seed"], r["classifier_seed"]): r["auc"] for r in rows}
    expected = [
        np.mean([by[("real+synthetic@0.5", s, c)] for c in range(3)])
        - np.mean([by[("real+shuffled@0.5", s, c)] for c in range(3)])
        for s in range(3)
    ]
    assert list(placebo["per_seed"].values()) == pytest.approx(expected, abs=1e-9)
    assert placebo["n_classifier_seeds"] == [3] and result["primary"] is None
    variance = variance_table(rows)
    assert len(variance) == 3 and all(v["n_groups"] == 3 and v["sizes"] == [3, 3, 3] for v in variance)
    assert all(v["share_between"] > 0.5 for v in variance)  # the 0.05-per-seed offsets dominate
    legacy = [
        {k: v for k, v in r.items() if k != "classifier_seed"} for r in rows if r["classifier_seed"] == 0
    ]
    assert variance_table(legacy) == []  # old records: classifier seed 0, nothing to split


def test_variance_and_placebo_sections_render(tmp_path):
    from medgan_aug.apps.study.comparison_tables import comparison_lines, reading_note, variance_lines

    out = tmp_path / "study"
    rows = []
    for seed in range(2):
        for cseed in range(2):
            for condition, s in {"real": 0.3, "real+synthetic@0.5": 0.4, "real+shuffled@0.5": 0.3}.items():
                key = f"{condition}-{seed}-{cseed}".replace("+", "_").replace("@", "_")
                rows.append(
                    _write_run(
                        out,
                        key,
                        0.5,
                        seed,
                        condition,
                        _scores(s, seed=seed * 7 + cseed),
                        classifier_seed=cseed,
                    )
                )
    comparisons = compare_conditions(out, rows, n_boot=100)["comparisons"]
    table = "\n".join(comparison_lines(comparisons, None))
    assert "real+synthetic@0.5 vs real+shuffled@0.5 (placebo)" in table and "| 2 x 2 |" in table
    note = "\n".join(reading_note(comparisons, ["real", "real+shuffled@0.5", "real+synthetic@0.5"]))
    assert "label information only where `real+synthetic@R` beats `real+shuffled@R`" in note
    assert "no `real+shuffled@R` condition" not in note
    variance = "\n".join(variance_lines(variance_table(rows)))
    assert "One-way random-effects ANOVA" in variance and "| 0.5 | real | small_cnn | 2 x 2 |" in variance


@pytest.mark.parametrize(
    "primary,message",
    [
        ({"condition": "real+mixup"}, r"primary: condition must be one of"),
        (
            {"condition": "real+synthetic@0.5", "baseline": "synthetic-only"},
            r"primary: baseline must be one of",
        ),
        ({"condition": "real"}, r"primary: condition and baseline are both 'real'"),
        (
            {"condition": "real+synthetic@0.5", "fractions": [0.1]},
            r"primary: fractions must be a non-empty list",
        ),
        (
            {"condition": "real+synthetic@0.5", "classifier": "resnet18"},
            r"primary: classifier must be one of",
        ),
        ({"condition": "real+synthetic@0.5", "alpha": 0.1}, r"primary: unknown key\(s\) \['alpha'\]"),
    ],
)
def test_primary_config_errors_name_the_key(tmp_path, primary, message):
    path = tmp_path / "study.yaml"
    path.write_text(
        "data: {flag: chestmnist}\nfractions: [0.25, 1.0]\nconditions: [real, real+synthetic@0.5]\n"
        f"primary: {json.dumps(primary)}\n"
    )
    with pytest.raises(ValueError, match=message):
        load_study_config(path)


def test_primary_is_not_part_of_any_run_key(chest28_path):
    config = load_study_config("quick", path=str(chest28_path))
    keys = [run_key(config, run) for run in expand_grid(config)]
    config.primary = {"condition": "real+synthetic@0.5", "fractions": [0.25]}
    config.__post_init__()
    assert [run_key(config, run) for run in expand_grid(config)] == keys


def test_every_comparison_gives_what_it_could_detect_at_80_percent_power(tmp_path, chest28_path):
    from medgan_aug.metrics.power import minimum_detectable_effect

    signal = {"real": 0.3, "real+classical": 0.3}
    config, out = tiny_study(tmp_path, chest28_path, signal, primary={"condition": "real+classical"})
    result = compare_conditions(out, collect_runs(out), n_boot=200, primary=config.primary)
    for c in result["comparisons"]:
        deltas = list(c["per_seed"].values())
        assert c["mde"] == pytest.approx(minimum_detectable_effect(float(np.std(deltas, ddof=1)), 4))
        assert c["unit"] == "images" and c["n_units"] == N_TEST
    summary = write_summary(config, out).read_text()
    assert "| detectable (80% power) |" in summary and "95% CI: test images only" in summary
    for c in result["comparisons"]:
        if c["reading"] == "no detectable difference":
            assert f"no detectable difference (could detect ≥ {c['mde']:.3f}) |" in summary
    assert f"detects a true ΔAUC of ≥ {result['primary']['mde']:.3f} with 80% power" in summary


def test_test_patients_in_the_scores_make_the_bootstrap_resample_patients(tmp_path, chest28_path):
    signal = {"real": 0.3, "real+synthetic@0.5": 0.35}
    patients = np.repeat([f"p{i:03d}" for i in range(20)], N_TEST // 20)  # 20 patients, 8 images each
    _, by_image = tiny_study(tmp_path / "a", chest28_path, signal)
    config, by_patient = tiny_study(tmp_path / "b", chest28_path, signal, patients=patients)
    images = compare_conditions(by_image, collect_runs(by_image), n_boot=300)["comparisons"]
    clustered = compare_conditions(by_patient, collect_runs(by_patient), n_boot=300)["comparisons"]
    for a, b in zip(images, clustered):
        assert (a["unit"], b["unit"], b["n_units"]) == ("images", "patients", 20)
        assert a["delta"] == b["delta"] and a["per_seed"] == b["per_seed"]
        assert a["images_ci_low"] != b["images_ci_low"]  # another test level: other intervals
    summary = write_summary(config, by_patient).read_text()
    assert "ΔAUC [95% CI: seeds + test patients (20)]" in summary
    # runs scored on the same images but with other patient ids are not paired
    key = collect_runs(by_patient)[0]["key"]
    with np.load(by_patient / "scores" / f"{key}.npz") as npz:
        np.savez(by_patient / "scores" / f"{key}.npz", scores=npz["scores"], targets=npz["targets"])
    with pytest.raises(ValueError, match="scored on different test sets"):
        compare_conditions(by_patient, collect_runs(by_patient), n_boot=10)


def test_protocol_names_the_pool_the_teacher_and_pretraining_only_where_runs_used_them():
    from medgan_aug.apps.study.summary import PROTOCOL, protocol_text

    plain = [{"gan_dir": "g1", "synthetic_ratio": 0.5}, {"gan_dir": "", "synthetic_ratio": 0.0}]
    assert protocol_text(plain) == PROTOCOL  # the committed studies' summaries stay byte for byte
    assert "trained only on that subset" in PROTOCOL
    pooled = [{"gan_dir": "g1", "pool": "train", "synthetic_labels": "conditional", "pseudo_ratio": 0.0}]
    text = protocol_text(pooled)
    assert "trained on the pool `train`" in text and "trained only on that subset" not in text
    assert "Teacher:" not in text and "synthetic-pretrain" not in text
    taught = pooled + [{"gan_dir": "", "pool": "", "pseudo_ratio": 0.5, "synthetic_pretrain_iterations": 0}]
    text = protocol_text(taught + [{"gan_dir": "g1", "pool": "train", "synthetic_pretrain_iterations": 300}])
    assert text.index("- Teacher:") < text.index("- `synthetic-pretrain") < text.index("- Classifier:")
    assert all(len(line) <= 120 for line in text.splitlines() if "Teacher" in line or "pretrain" in line)


def test_results_csv_gains_the_teacher_columns_only_for_records_that_carry_them(tmp_path):
    import csv as csv_module

    from medgan_aug.apps.study.summary import write_results_csv

    def record(condition: str, **more) -> dict:
        uses_gan = "synthetic" in condition
        return {
            "key": condition, "fraction": 0.1, "seed": 0, "condition": condition, "classifier": "small_cnn",
            "synthetic_ratio": 0.5 if uses_gan else 0.0, "gan_dir": "gans/g" if uses_gan else None,
            "label_names": ["a"], "per_label_auc": {"a": 0.5}, "skipped_labels": [], "auc": 0.5, "acc": 0.5,
            **more,
        }  # fmt: skip

    new = [
        record("real", synthetic_labels="teacher", pseudo_ratio=0.0, synthetic_pretrain_iterations=0),
        record(
            "real+pseudo@0.5", synthetic_labels="teacher", pseudo_ratio=0.5, synthetic_pretrain_iterations=0
        ),
        record(
            "real+synthetic@0.5",
            synthetic_labels="teacher",
            pseudo_ratio=0.0,
            synthetic_pretrain_iterations=0,
        ),
    ]
    write_results_csv(new, tmp_path / "new.csv")
    with open(tmp_path / "new.csv", newline="") as fh:
        table = list(csv_module.DictReader(fh))
    header = list(table[0])
    at = header.index("classical") + 1
    assert header[at : at + 3] == ["synthetic_labels", "pseudo_ratio", "synthetic_pretrain_iterations"]
    assert [r["synthetic_labels"] for r in table] == ["", "", "teacher"]  # only a run with generated images
    assert [r["pseudo_ratio"] for r in table] == ["0.0", "0.5", "0.0"]
    write_results_csv([record("real"), record("real+synthetic@0.5")], tmp_path / "old.csv")
    with open(tmp_path / "old.csv", newline="") as fh:
        assert not {"synthetic_labels", "pseudo_ratio"} & set(next(csv_module.DictReader(fh)))


def test_arms_with_generated_images_are_compared_with_pseudo_labels_where_the_study_has_them():
    from medgan_aug.apps.study.comparisons import comparison_pairs

    study = ["real", "real+pseudo@0.5", "real+synthetic@0.5", "real+shuffled@0.5", "synthetic-pretrain+real"]
    pairs = comparison_pairs(study)
    assert [p for p in pairs if p[2] == "vs pseudo"] == [
        ("real+synthetic@0.5", "real+pseudo@0.5", "vs pseudo"),
        ("synthetic-pretrain+real", "real+pseudo@0.5", "vs pseudo"),
    ]  # the declared primary of the low-label studies is one of them
    without = ["real", "real+synthetic@0.5", "real+shuffled@0.5"]
    assert all(kind != "vs pseudo" for _, _, kind in comparison_pairs(without))  # older studies: as before
