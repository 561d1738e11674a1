"""The ``medgan-aug`` command line: ``data info`` on real files, and clean errors."""

from __future__ import annotations

import subprocess
import sys

from medgan_aug.cli import main


def test_data_info_prints_real_counts(chest28_path, capsys):
    assert main(["data", "info", "--path", str(chest28_path)]) == 0
    out = capsys.readouterr().out
    assert "split sizes: train 691  val 76  test 233" in out
    assert "image: 1x28x28" in out
    rows = {line.split()[1]: line.split()[2:] for line in out.splitlines() if line[:2].strip().isdigit()}
    assert len(rows) == 14
    assert rows["hernia"] == ["9", "0", "0"] and rows["effusion"] == ["120", "20", "30"]


def test_data_info_bad_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "x.npz"
    bad.write_text("nope")
    assert main(["data", "info", "--path", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("medgan-aug data: error:") and str(bad) in err and "Traceback" not in err


def test_console_entry_point_runs_as_module(pneumonia_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "medgan_aug",
            "data",
            "info",
            "--path",
            str(pneumonia_path),
            "--flag",
            "pneumoniamnist",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "train 4682  val 524  test 621" in result.stdout and "pneumonia" in result.stdout


def test_study_with_a_typo_in_its_config_is_a_one_line_error(tmp_path, capsys):
    config = tmp_path / "typo.yaml"
    config.write_text("data: {flag: chestmnist}\nclassifier: {itertions: 5}\n")
    assert main(["study", "--config", str(config), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "itertions" in err and str(config) in err and "Traceback" not in err
