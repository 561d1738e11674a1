"""The ``medgan-aug`` command line: ``data info`` on real files, options generated from the config
dataclasses (:mod:`medgan_aug.cli.options`), and clean errors."""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
from typing import Optional

import pytest

from medgan_aug.apps.classify import ClassifierRunConfig
from medgan_aug.apps.train import GANConfig
from medgan_aug.cli import build_parser, main
from medgan_aug.cli.options import add_config_options, config_from_args, option_fields, option_name
from medgan_aug.utils.settings import setting

# The options as they were written by hand before they were generated: every one must stay (additions are fine).
DATA_OPTIONS = "--path --sample --flag --root --download --size --fraction --subset-seed"
TRAIN_OPTIONS = f"""{DATA_OPTIONS} --conditional --latent-dim --base-channels --spectral-norm --iterations
    --batch-size --loss --lr-g --lr-d --beta1 --beta2 --lr-schedule --d-steps --ema-decay --diffaugment --r1-gamma
    --seed --out --resume --checkpoint-every --n-saved --sample-every --n-samples --standing-stats-batches --device
    --threads --no-progress""".split()
CLASSIFY_OPTIONS = f"""{DATA_OPTIONS} --condition --gan-run --num-synthetic --classifier --iterations --batch-size
    --lr --seed --out --device --threads --no-progress""".split()


def _subparser(command: str) -> argparse.ArgumentParser:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


def _option_strings(command: str) -> list[str]:
    return [s for a in _subparser(command)._actions for s in a.option_strings if s not in ("-h", "--help")]


# ----------------------------------------------------------------------------------------------- data info


def test_data_info_prints_real_counts(chest28_path, capsys):
    assert main(["data", "info", "--path", str(chest28_path)]) == 0
    out = capsys.readouterr().out
    assert "split sizes: train 691  val 76  test 233" in out
    assert "image: 1x28x28" in out
    rows = {line.split()[1]: line.split()[2:] for line in out.splitlines() if line[:2].strip().isdigit()}
    assert len(rows) == 14
    assert rows["hernia"] == ["9", "0", "0"] and rows["effusion"] == ["120", "20", "30"]


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


# ------------------------------------------------------------------------------------- generated options


@pytest.mark.parametrize(
    "command, config_cls, historical",
    [("train", GANConfig, TRAIN_OPTIONS), ("classify", ClassifierRunConfig, CLASSIFY_OPTIONS)],
)
def test_every_config_field_is_an_option_and_no_option_was_lost(command, config_cls, historical):
    fields = dataclasses.fields(config_cls)
    excluded = [f.name for f in fields if not f.metadata.get("cli", True)]
    assert [f.name for f in option_fields(config_cls)] == [f.name for f in fields if f.name not in excluded]
    assert all(f.metadata["help"] and f.metadata["group"] for f in fields)  # every field is documented
    dests = {a.dest for a in _subparser(command)._actions if a.dest != "help"}
    assert dests == {f.name for f in option_fields(config_cls)}
    assert sorted(_option_strings(command)) == sorted(historical)


def test_train_options_parse_into_the_config(tmp_path):
    argv = ["train", "--out", str(tmp_path), "--iterations", "7", "--size", "64", "--conditional"]
    argv += ["--no-progress", "--threads", "2", "--lr-g", "1e-3", "--loss", "hinge", "--diffaugment", ""]
    config = build_parser().parse_args(argv)
    expected = GANConfig(
        out=str(tmp_path), iterations=7, size=64, conditional=True, progress=False, threads=2, lr_g=1e-3,
        loss="hinge", diffaugment="",
    )  # fmt: skip
    from medgan_aug.cli.commands.train import config_from_args as train_config_from_args

    assert train_config_from_args(config) == expected == config_from_args(GANConfig, config)
    # without options every setting is the dataclass default (--out is required on the command line only)
    defaults = config_from_args(GANConfig, build_parser().parse_args(["train", "--out", "runs/gan"]))
    assert defaults == GANConfig()


def test_classify_options_parse_into_the_config():
    argv = (
        "classify --out o --sample nih1000 --fraction 0.25 --condition real+classical --classifier resnet18"
    )
    args = build_parser().parse_args([*argv.split(), "--iterations", "7", "--no-progress"])
    assert config_from_args(ClassifierRunConfig, args) == ClassifierRunConfig(
        out="o", sample="nih1000", fraction=0.25, condition="real+classical", classifier="resnet18", iterations=7,
        progress=False,
    )  # fmt: skip
    assert config_from_args(ClassifierRunConfig, build_parser().parse_args(["classify", "--out", "o"])) == (
        ClassifierRunConfig(out="o")
    )


@pytest.mark.parametrize("command, config_cls", [("train", GANConfig), ("classify", ClassifierRunConfig)])
def test_help_lists_every_option_with_its_help_text(command, config_cls, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per option
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for field in option_fields(config_cls):  # "--lr-g LR_G Adam learning rate of G (default: 0.0002)"
        listed = re.search(
            rf" {option_name(field)}( [A-Z0-9_]+| {{[^ ]+}})? {re.escape(field.metadata['help'])}", out
        )
        assert listed, (option_name(field), out)
    assert "--no-progress" in out and "--progress" not in out.replace("--no-progress", "")


def test_options_helper_on_a_toy_config():
    @dataclasses.dataclass
    class Toy:
        name: str = setting(help="a required name", group="io")
        count: Optional[int] = setting(None, "how many (100% by default)")  # noqa: UP045
        mode: str = setting("a", "the mode", choices=("a", "b"))
        fast: bool = setting(False, "go fast")
        checks: bool = setting(True, "run the checks")
        derived: int = setting(3, "computed from count", cli=False)

    parser = argparse.ArgumentParser(prog="toy")
    add_config_options(parser, Toy)
    assert [option_name(f) for f in option_fields(Toy)] == "--name --count --mode --fast --no-checks".split()
    assert "100%" in parser.format_help()  # '%' is escaped for argparse
    args = parser.parse_args(["--name", "x", "--count", "4", "--fast", "--no-checks"])
    assert config_from_args(Toy, args) == Toy(name="x", count=4, mode="a", fast=True, checks=False, derived=3)
    with pytest.raises(SystemExit):  # required, and choices are checked
        parser.parse_args(["--mode", "c"])

    @dataclasses.dataclass
    class Bad:
        sizes: list = setting(None, "a list")

    with pytest.raises(TypeError, match="sizes"):
        add_config_options(argparse.ArgumentParser(), Bad)


# ----------------------------------------------------------------------------------------------- errors


def test_data_info_bad_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "x.npz"
    bad.write_text("nope")
    assert main(["data", "info", "--path", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("medgan-aug data: error:") and str(bad) in err and "Traceback" not in err


def test_study_with_a_typo_in_its_config_is_a_one_line_error(tmp_path, capsys):
    config = tmp_path / "typo.yaml"
    config.write_text("data: {flag: chestmnist}\nclassifier: {itertions: 5}\n")
    assert main(["study", "--config", str(config), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "itertions" in err and str(config) in err and "Traceback" not in err
