"""experiments/diffusion_vs_dcgan.py (issue 22): budgets, input checks, the 15 -> 60 continuation, the CSV rows
and the table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_helpers import load_script

dvd = load_script("experiments/diffusion_vs_dcgan.py")

#: 0.5 s per iteration: 0.05 minutes = 6 iterations, 0.1 minutes = 12
SMOKE_CALIBRATION = {"seconds_per_iteration": {"dcgan": 0.5, "ddpm": 0.5}, "machine": "test"}
#: the DCGAN at its full-size default recipe (a handful of iterations is cheap); the diffusion UNet tiny
TINY = {"dcgan": {}, "ddpm": dict(base_channels=4, batch_size=8, sampling_steps=2)}


def _one_line_error(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as err:
        dvd.main(argv)
    message = str(err.value.code)
    assert message.startswith("error: ") and "\n" not in message
    return message


# ------------------------------------------------------------------------------------------- budgets
def test_budget_iterations_is_minutes_over_seconds_per_iteration():
    assert dvd.budget_iterations(15, 0.08) == 11250
    assert dvd.budget_iterations(60, 0.8) == 4500
    assert dvd.budget_iterations(15, 0.78) == 1154  # issue 22's "about 1,150 steps" in 15 minutes
    assert dvd.budget_iterations(0.05, 0.5) == 6
    assert dvd.budget_iterations(0.001, 10.0) == 1  # never 0 iterations
    with pytest.raises(dvd.InputError, match="--minutes must be positive"):
        dvd.budget_iterations(0, 0.5)


# ------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "does not exist"),
        ("{not json", "is not valid JSON"),
        ('{"machine": "x"}', "has no 'seconds_per_iteration'"),
        (
            '{"seconds_per_iteration": {"dcgan": 0.08}}',
            "seconds_per_iteration['ddpm'] must be a positive number",
        ),
        ('{"seconds_per_iteration": {"dcgan": -1, "ddpm": 0.8}}', "seconds_per_iteration['dcgan']"),
        ('{"seconds_per_iteration": {"dcgan": true, "ddpm": 0.8}}', "seconds_per_iteration['dcgan']"),
        (
            '{"seconds_per_iteration": {"dcgan": 0.1, "ddpm": 0.8}, "precision": {"ddpm": "fp16"}}',
            "'precision'",
        ),
    ],
)
def test_a_bad_calibration_file_gives_one_line_naming_it(tmp_path, content, expected):
    path = tmp_path / "calibration.json"
    if content is not None:
        path.write_text(content)
    message = _one_line_error(["train", "--runs", str(tmp_path / "runs"), "--calibration", str(path)])
    assert str(path) in message and expected in message
    assert not (tmp_path / "runs").exists()


def test_an_unknown_data_set_or_missing_file_gives_one_line(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(SMOKE_CALIBRATION))
    argv = ["train", "--runs", str(tmp_path / "runs"), "--calibration", str(path)]
    message = _one_line_error([*argv, "--datasets", "nih1000_100", "chest"])
    assert "unknown data set 'chest'" in message and "pneumonia_10" in message
    message = _one_line_error([*argv, "--datasets", "pneumonia_10", "--data", str(tmp_path / "nowhere")])
    assert "pneumoniamnist_union.npz not found" in message
    assert not (tmp_path / "runs").exists()


def _fake_run(folder: Path, iterations: int, finished: bool = True) -> Path:
    folder.mkdir(parents=True)
    record = {"config": {"iterations": iterations, "batch_size": 64}}
    if finished:
        record["training_seconds"] = 1.0
        (folder / "generator.pt").write_bytes(b"")
    (folder / "config.json").write_text(json.dumps(record))
    return folder


def test_a_longer_budget_continues_the_longest_finished_shorter_run(tmp_path):
    cell = tmp_path / "nih1000_100" / "ddpm"
    _fake_run(cell / "5min", 50)
    fifteen = _fake_run(cell / "15min", 150)
    _fake_run(cell / "30min", 300, finished=False)  # interrupted: not a starting point
    _fake_run(cell / "90min", 900)  # longer: not a starting point
    assert dvd._continued_from(tmp_path, "nih1000_100", "ddpm", 600) == fifteen
    assert dvd._continued_from(tmp_path, "nih1000_100", "ddpm", 50) is None
    found = dvd.finished_runs(tmp_path)
    assert [(d, f, m) for d, f, m, _ in found] == [("nih1000_100", "ddpm", m) for m in (5.0, 15.0, 90.0)]


def test_a_finished_run_of_another_calibration_is_refused(tmp_path):
    _fake_run(dvd.run_dir(tmp_path, "nih1000_100", "dcgan", 15), 100)
    with pytest.raises(dvd.InputError, match="trained to 100 iterations but the calibration gives 11250"):
        dvd.train_run(tmp_path, "nih1000_100", "dcgan", 15, {"seconds_per_iteration": {"dcgan": 0.08}})


# --------------------------------------------------------------------------------- rows and table
def _metrics(family: str) -> dict:
    def space(ratio: float) -> dict:
        return {
            "n": 76,
            "floor_kind": "patient-disjoint training halves",
            "ratio": ratio,
            "ratio_std": 0.1,
            "frechet_distance": {"synthetic": 2.0 * ratio, "train": 2.0, "floor": 1.5},
            "precision": {"synthetic": 0.6, "train": 0.8},
            "recall": {"synthetic": 0.3, "train": 0.9},
        }

    return {
        "data": {"heldout": "val + test"},
        "heldout_anchored": {
            "anchor": "held-out ...",
            "spaces": {"extractor": space(1.7), "random_cnn": space(1.2)},
        },
        "label_faithfulness": {"mean_shift": 0.05, "mean_auc": 0.61, "real_heldout": {"mean_shift": 0.2}},
        "memorization": {
            "pixel": {"share_flagged": 0.01, "heldout_share_flagged": 0.012},
            "feature": {"share_flagged": 0.02},
        },
        "sampling": {
            "family": family,
            "ddim_steps": 50 if family == "ddpm" else None,
            "guidance_scale": 1.0 if family == "ddpm" else None,
            "images_generated": 1000,
            "seconds": 40.0,
            "images_per_second": 25.0,
        },
        "synthetic": {"num_samples": 1000},
        "extractor": {"val_auc": 0.7},
    }


def test_metrics_row_reads_the_report_numbers():
    record = {
        "config": {"iterations": 1150, "batch_size": 64},
        "training_seconds": 920.0,
        "precision_used": "bf16",
    }
    row = dvd.metrics_row(_metrics("ddpm"), record)
    assert (row["fd_ratio_trained"], row["fd_ratio_neutral"]) == (1.7, 1.2)
    assert (row["fd_synthetic_trained"], row["fd_train_trained"], row["fd_floor_trained"]) == (3.4, 2.0, 1.5)
    assert (row["precision_trained"], row["recall_trained"]) == (0.6, 0.3)
    assert (row["precision_real_trained"], row["recall_real_trained"]) == (0.8, 0.9)
    assert (row["faithfulness_shift"], row["faithfulness_real_shift"]) == (0.05, 0.2)
    assert (row["memorized_share"], row["memorized_share_feature"]) == (0.01, 0.02)
    assert (row["ddim_steps"], row["sampling_images_per_s"]) == (50, 25.0)
    assert row["train_images_per_s"] == pytest.approx(1150 * 64 / 920.0, abs=0.01)
    assert (row["anchor"], row["anchor_n"], row["precision"]) == ("val + test", 76, "bf16")
    assert set(row) <= set(dvd.COLUMNS)
    unconditional = dict(_metrics("dcgan"), label_faithfulness=None)
    assert dvd.metrics_row(unconditional, record)["faithfulness_shift"] is None


def test_table_lists_each_measured_row_and_marks_the_rest():
    rows = []
    for family, minutes, ratio in (("ddpm", "60", 1.25), ("dcgan", "15", 2.5)):
        row = dvd.metrics_row(
            _metrics(family), {"config": {"iterations": 100, "batch_size": 64}, "training_seconds": 50.0}
        )
        rows.append(
            {
                **row,
                "dataset": "pneumonia_10",
                "family": family,
                "minutes": minutes,
                "fd_ratio_trained": ratio,
            }
        )
    steps = [
        {"run": "r/pneumonia_10/ddpm/60min", "anchor": "val", "num_samples": 1000, "ddim_steps": s,
         "guidance_scale": g, "network_passes_per_image": 2 * s if g else s, "fd_ratio_trained": f,
         "fd_ratio_trained_std": 0.1, "label_shift": shift, "sampling_images_per_s": 100 / s}
        for s, g, f, shift in ((10, 1.0, 2.0, 0.5), (50, 1.0, 1.3, 0.7), (50, 0.0, 1.1, None))
    ]  # fmt: skip
    text = dvd.table_markdown(rows, steps)
    section = text.split("## pneumonia_10\n")[1].split("##")[0]
    lines = [line for line in section.splitlines() if line.startswith("| d")]
    assert lines[0].startswith(
        "| dcgan | 15 | 100 | 50 | 128 | 2.50 |"
    )  # dcgan first, whatever the CSV order
    assert lines[1].startswith("| ddpm | 60 | 100 | 50 | 128 | 1.25 |")
    assert text.split("## pneumonia_100\n")[1].split("##")[0].strip() == "not measured"
    assert (
        "| 1 | 10 | 20 | 2.00 ± 0.10 | 0.500 | 10.00 |" in text
        and "| 1 | 50 | 100 | 1.30 ± 0.10 | 0.700 | 2.00 |" in text
    )
    assert "| 0 | 50 | 50 | 1.10 ± 0.10 | - | 2.00 |" in text and "anchor val" in text


def test_a_guidance_sweep_joins_the_steps_sweep_in_one_file():
    def row(steps, guidance, ratio, anchor="val"):
        return {"run": "r/a/ddpm/15min", "anchor": anchor, "ddim_steps": steps, "guidance_scale": guidance,
                "fd_ratio_trained": ratio}  # fmt: skip

    old = [row(10, 1.0, 3.0), row(50, 1.0, 2.0), row(50, 1.0, 9.0, anchor="val+test")]
    merged = dvd.merge_step_rows(old, [row(50, 1.0, 1.5), row(50, 0.0, 2.5)])
    assert [(r["anchor"], r["guidance_scale"], r["ddim_steps"], r["fd_ratio_trained"]) for r in merged] == [
        ("val", 0.0, 50, 2.5), ("val", 1.0, 10, 3.0), ("val", 1.0, 50, 1.5), ("val+test", 1.0, 50, 9.0)
    ]  # fmt: skip
    # a row of the format before the anchor column counts as anchored on val + test
    legacy = {k: v for k, v in row(50, 1.0, 7.0).items() if k != "anchor"}
    assert dvd.merge_step_rows([legacy], [row(50, 1.0, 8.0, anchor="val+test")])[0]["fd_ratio_trained"] == 8.0


# ------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Both families on the packaged NIH1000 sample to 0.05 then 0.1 minutes (6 then 12 iterations at 0.5 s/it),
    and each family trained straight to 12 iterations elsewhere."""
    root = tmp_path_factory.mktemp("dvd")
    results = {}
    for family in dvd.FAMILIES:
        for where, budgets in (("runs", (0.05, 0.1)), ("direct", (0.1,))):
            for minutes in budgets:
                results[where, family, minutes] = dvd.train_run(
                    root / where, "nih1000_100", family, minutes, SMOKE_CALIBRATION, data_dir=dvd.DATA_DIR,
                    **TINY[family],
                )  # fmt: skip
    return root, results


def _images(run: Path) -> torch.Tensor:
    from medgan_aug.data.synthetic import SyntheticDataset

    return SyntheticDataset.from_run(run, 8, seed=0).get_batch(np.arange(8))["image"]


@pytest.mark.slow
@pytest.mark.parametrize("family", dvd.FAMILIES)
def test_the_longer_budget_continues_the_shorter_run_as_if_trained_directly(smoke_runs, family):
    root, results = smoke_runs
    short, long = results["runs", family, 0.05], results["runs", family, 0.1]
    assert (short["iterations"], long["iterations"]) == (6, 12)
    assert long["from"] == short["run"] and results["direct", family, 0.1]["from"] is None
    direct = results["direct", family, 0.1]["run"]
    assert (long["run"] / "losses.csv").read_text() == (direct / "losses.csv").read_text()
    assert len((long["run"] / "losses.csv").read_text().splitlines()) == 13  # header + 12 iterations
    assert torch.equal(_images(long["run"]), _images(direct))
    # the short run stays as it was; the long one's training time counts both sessions
    assert json.loads((short["run"] / "config.json").read_text())["config"]["iterations"] == 6
    assert len((short["run"] / "losses.csv").read_text().splitlines()) == 7
    saved = json.loads((long["run"] / "config.json").read_text())
    assert (
        saved["training_seconds"] > json.loads((short["run"] / "config.json").read_text())["training_seconds"]
    )
    again = dvd.train_run(root / "runs", "nih1000_100", family, 0.1, SMOKE_CALIBRATION, data_dir=dvd.DATA_DIR)
    assert again["status"] == "done before"


@pytest.mark.slow
def test_evaluate_steps_and_table_write_their_files(smoke_runs, tmp_path):
    root, _ = smoke_runs
    out = tmp_path / "results"
    small = ["--num", "20", "--extractor-iterations", "30", "--repeats", "2"]
    dvd.main(["evaluate", "--runs", str(root / "runs"), "--out", str(out), *small, "--clf-iterations", "10"])
    rows = list(csv.DictReader(open(out / "equal_minutes.csv")))
    assert [(r["family"], r["minutes"], r["iterations"]) for r in rows] == [
        ("dcgan", "0.05", "6"), ("dcgan", "0.1", "12"), ("ddpm", "0.05", "6"), ("ddpm", "0.1", "12")
    ]  # fmt: skip
    for r in rows:
        assert float(r["fd_ratio_trained"]) > 0 and float(r["fd_ratio_neutral"]) > 0
        assert 0 <= float(r["tstr_auc"]) <= 1 and 0 <= float(r["memorized_share"]) <= 1
        assert (
            float(r["sampling_images_per_s"]) > 0 and r["tstr_split"] == "val" and r["anchor"] == "val + test"
        )
        assert (out / "reports" / f"nih1000_100_{r['family']}_{r['minutes']}min.json").is_file()
    assert [r["ddim_steps"] for r in rows] == ["", "", "2", "2"]
    assert len(list((root / "runs" / "extractors").glob("*.pt"))) == 1  # one extractor for every run
    dvd.main(["evaluate", "--runs", str(root / "runs"), "--out", str(out), *small, "--clf-iterations", "10"])
    assert len(list(csv.DictReader(open(out / "equal_minutes.csv")))) == 4  # nothing evaluated twice
    message = _one_line_error(["evaluate", "--runs", str(root / "runs"), "--out", str(out), "--num", "30"])
    assert "other settings" in message

    ddpm = root / "runs" / "nih1000_100" / "ddpm" / "0.1min"
    dvd.main(["steps", "--run", str(ddpm), "--steps", "2", "1", "--out", str(out), *small])
    steps = list(csv.DictReader(open(out / "fd_vs_steps.csv")))
    assert [(r["ddim_steps"], r["network_passes_per_image"]) for r in steps] == [("1", "2"), ("2", "4")]
    assert all(float(r["fd_ratio_trained"]) > 0 and float(r["sampling_images_per_s"]) > 0 for r in steps)
    assert {r["anchor"] for r in steps} == {"val"} and all(r["label_shift"] != "" for r in steps)
    dvd.main(["steps", "--run", str(ddpm), "--steps", "1", "--guidance", "0", "--faithfulness", "4", "--out", str(out),
              *small])  # fmt: skip
    steps = list(csv.DictReader(open(out / "fd_vs_steps.csv")))  # the guidance row joins the two above
    assert [(r["guidance_scale"], r["ddim_steps"], r["network_passes_per_image"]) for r in steps] == [
        ("0.0", "1", "1"), ("1.0", "1", "2"), ("1.0", "2", "4")
    ]  # fmt: skip
    assert steps[0]["faithfulness_samples"] == "4" and -1 <= float(steps[0]["label_shift"]) <= 1
    assert "--guidance must be" in _one_line_error(
        ["steps", "--run", str(ddpm), "--guidance", "-1", "--out", str(out)]
    )
    message = _one_line_error(["steps", "--run", str(ddpm), "--steps", "5000", "--out", str(out), *small])
    assert "--steps 5000" in message and "exceeds num_train_timesteps" in message
    assert (out / "fd_vs_steps.png").stat().st_size > 1000
    dvcgan = root / "runs" / "nih1000_100" / "dcgan" / "0.1min"
    assert "is not a diffusion run" in _one_line_error(
        ["steps", "--run", str(dvcgan), "--out", str(out), *small]
    )

    dvd.main(["table", "--out", str(out)])
    text = (out / "equal_minutes.md").read_text()
    assert text.count("| ddpm | 0.") == 2 and text.count("| dcgan | 0.") == 2 and "| 2 | 4 |" in text


def test_calibrate_writes_a_calibration_that_train_accepts(tmp_path):
    tiny = {"dcgan": dict(base_channels=8, batch_size=16), "ddpm": TINY["ddpm"]}
    result = dvd.calibrate(tmp_path / "calibration.json", iterations=1, rounds=2, overrides=tiny)
    loaded = dvd.load_calibration(tmp_path / "calibration.json")
    assert loaded["seconds_per_iteration"] == result["seconds_per_iteration"]
    for family in dvd.FAMILIES:
        assert len(loaded["all_rounds"][family]) == 2
        assert loaded["seconds_per_iteration"][family] == min(loaded["all_rounds"][family]) > 0
        assert loaded["precision"][family] in ("bf16", "fp32")
