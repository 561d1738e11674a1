"""The ``medgan-aug`` command line: ``data info`` on real files, options generated from the config
dataclasses (:mod:`medgan_aug.cli.options`), and one-line errors (:mod:`medgan_aug.cli.errors`)."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
import torch

from medgan_aug.apps.classify import ClassifierRunConfig
from medgan_aug.apps.train import GANConfig
from medgan_aug.cli import build_parser, main
from medgan_aug.cli.errors import one_line_message
from medgan_aug.cli.options import add_config_options, config_from_args, option_fields, option_name
from medgan_aug.networks.classifiers import SmallCNN
from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.networks.model_file import save_generator
from medgan_aug.utils import errors
from medgan_aug.utils.settings import setting

# The options as they were written by hand before they were generated: every one must stay (additions are fine).
DATA_OPTIONS = "--path --sample --flag --root --download --size --fraction --subset-seed"
TRAIN_OPTIONS = f"""{DATA_OPTIONS} --conditional --latent-dim --base-channels --spectral-norm --iterations
    --batch-size --loss --lr-g --lr-d --beta1 --beta2 --lr-schedule --d-steps --ema-decay --diffaugment --r1-gamma
    --lecam-weight --bcr-weight --aux-weight --ada-target --ada-kimg --precision --no-channels-last
    --seed --out --resume --checkpoint-every --n-saved --sample-every --n-samples --standing-stats-batches --device
    --threads --no-progress""".split()
CLASSIFY_OPTIONS = f"""{DATA_OPTIONS} --condition --gan-run --num-synthetic --classifier --iterations --batch-size
    --lr --seed --out --device --threads --no-progress""".split()
# Added since: --tensorboard on both; classify's run folder is --run (--gan-run still parses, unlisted).
TRAIN_OPTIONS += ["--tensorboard"]
CLASSIFY_OPTIONS += ["--run", "--tensorboard"]


def _subparser(command: str) -> argparse.ArgumentParser:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


def _option_strings(command: str) -> list[str]:
    return [s for a in _subparser(command)._actions for s in a.option_strings if s not in ("-h", "--help")]


def _assert_one_line_error(capsys, code: int, command: str, *mentions: object) -> str:
    """Exit code 1, exactly one line on stderr, from ``command``, naming each of ``mentions``, no traceback."""
    err = capsys.readouterr().err
    assert code == 1, err
    assert len(err.splitlines()) == 1 and err.endswith("\n"), err
    assert err.startswith(f"medgan-aug {command}: error: ") and "Traceback" not in err, err
    for mention in mentions:
        assert str(mention) in err, (mention, err)
    return err.strip()


# ----------------------------------------------------------------------------------------------- data info


def test_data_info_prints_real_counts(chest28_path, capsys):
    assert main(["data", "info", "--path", str(chest28_path)]) == 0
    out = capsys.readouterr().out
    assert "split sizes: train 691  val 76  test 233" in out
    assert "image: 1x28x28" in out
    rows = {line.split()[1]: line.split()[2:] for line in out.splitlines() if line[:2].strip().isdigit()}
    assert len(rows) == 14
    assert rows["hernia"] == ["9", "0", "0"] and rows["effusion"] == ["120", "20", "30"]


@pytest.mark.slow
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
    # --pretrained NAME is the CLI's other way to give --run (medgan_aug.cli.pretrained resolves it into gan_run)
    assert dests - {"pretrained"} == {f.name for f in option_fields(config_cls)}
    missing = set(historical) - set(_option_strings(command))
    assert not missing, missing


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


# ---------------------------------------------------------------------------------------- one-line errors


def test_data_info_bad_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "x.npz"
    bad.write_text("nope")
    _assert_one_line_error(capsys, main(["data", "info", "--path", str(bad)]), "data", bad)
    missing = tmp_path / "missing.npz"
    _assert_one_line_error(capsys, main(["data", "info", "--path", str(missing)]), "data", missing)
    _assert_one_line_error(capsys, main(["data", "info", "--sample", "nope"]), "data", "nope")


def test_study_with_a_typo_in_its_config_is_a_one_line_error(tmp_path, capsys):
    config = tmp_path / "typo.yaml"
    config.write_text("data: {flag: chestmnist}\nclassifier: {itertions: 5}\n")
    code = main(["study", "--config", str(config), "--out", str(tmp_path / "out")])
    _assert_one_line_error(capsys, code, "study", "itertions", config)
    code = main(["study", "--config", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "out")])
    _assert_one_line_error(capsys, code, "study", "none.yaml")


def test_study_device_errors_are_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["study", "--config", "quick", "--device", "gpu", "--out", str(out)])
    _assert_one_line_error(capsys, code, "study", "device", "'gpu'")
    if not torch.cuda.is_available():  # a GPU this machine lacks fails before any work
        code = main(["study", "--config", "quick", "--device", "cuda", "--out", str(out)])
        _assert_one_line_error(capsys, code, "study", "'cuda'", "CUDA is not available")
        assert not out.exists()


@pytest.mark.parametrize(
    "extra, mentions",
    [
        (["--fraction", "1.5"], ["fraction", "1.5"]),
        (["--iterations", "0"], ["iterations"]),
        (["--diffaugment", "colour"], ["colour"]),
        (["--device", "gpu"], ["device", "gpu"]),
        (["--lr-d", "-1"], ["lr_d"]),
    ],
)
def test_train_bad_settings_are_one_line_errors(extra, mentions, chest28_path, tmp_path, capsys):
    code = main(["train", "--path", str(chest28_path), "--out", str(tmp_path / "run"), *extra])
    _assert_one_line_error(capsys, code, "train", *mentions)


def test_train_missing_data_and_existing_run_are_one_line_errors(chest28_path, tmp_path, capsys):
    missing = tmp_path / "none.npz"
    _assert_one_line_error(
        capsys, main(["train", "--path", str(missing), "--out", str(tmp_path)]), "train", missing
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    argv = ["train", "--path", str(chest28_path), "--base-channels", "8", "--out", str(run), "--no-progress"]
    _assert_one_line_error(capsys, main(argv), "train", run, "--resume")


@pytest.mark.parametrize(
    "extra, mentions",
    [
        (["--condition", "real+synthetic@0.5"], ["--run"]),
        (["--condition", "real", "--run", "runs/gan"], ["runs/gan"]),
        (["--condition", "real", "--gan-run", "runs/gan"], ["runs/gan"]),  # the former name still parses
        (["--condition", "real+flip"], ["real+flip"]),
        (["--num-synthetic", "0"], ["num_synthetic"]),
    ],
)
def test_classify_bad_settings_are_one_line_errors(extra, mentions, chest28_path, tmp_path, capsys):
    code = main(["classify", "--path", str(chest28_path), "--out", str(tmp_path / "cls"), *extra])
    _assert_one_line_error(capsys, code, "classify", *mentions)


def test_classify_missing_gan_run_and_existing_run_are_one_line_errors(chest28_path, tmp_path, capsys):
    gan = tmp_path / "no_gan"
    argv = ["classify", "--path", str(chest28_path), "--condition", "synthetic-only", "--gan-run", str(gan)]
    _assert_one_line_error(
        capsys, main([*argv, "--out", str(tmp_path / "c"), "--iterations", "1"]), "classify", gan
    )
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "metrics.json").write_text("{}")
    code = main(["classify", "--path", str(chest28_path), "--out", str(tmp_path / "done")])
    _assert_one_line_error(capsys, code, "classify", tmp_path / "done", "metrics.json")


def test_classifier_divergence_is_one_line(chest28_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(SmallCNN, "forward", lambda self, x: torch.full((x.shape[0], 14), float("nan")))
    argv = (
        f"classify --path {chest28_path} --fraction 0.1 --iterations 3 --batch-size 8 --out {tmp_path / 'c'}"
    )
    code = main([*argv.split(), "--no-progress", "--threads", "1"])
    _assert_one_line_error(capsys, code, "classify", "classifier training diverged at step 1: loss is nan")
    assert not (tmp_path / "c").exists()


@pytest.fixture
def generator_file(tmp_path):
    torch.manual_seed(0)
    g = DCGANGenerator(image_size=28, latent_dim=8, num_labels=0, base_channels=8).eval()
    return save_generator(g, tmp_path / "g.pt", meta={"flag": "pneumoniamnist", "iterations": 1})


def test_generate_report_and_export_bundle_bad_input_are_one_line(generator_file, tmp_path, capsys):
    existing = tmp_path / "old.npz"
    existing.write_bytes(b"x")
    gen = ["generate", "--run", str(generator_file), "--num", "10", "--quiet"]
    _assert_one_line_error(capsys, main([*gen, "--out", str(existing)]), "generate", existing, "--overwrite")
    _assert_one_line_error(capsys, main([*gen, "--out", str(tmp_path / "x.txt")]), "generate", "x.txt")
    code = main(["generate", "--run", str(generator_file), "--num", "0", "--out", str(tmp_path / "n.npz")])
    _assert_one_line_error(capsys, code, "generate", "--num")
    code = main([*gen, "--out", str(tmp_path / "s.npz")])  # unconditional: no labels for a MedMNIST file
    _assert_one_line_error(capsys, code, "generate", "unconditional")
    nope = tmp_path / "nope"
    _assert_one_line_error(capsys, main(["report", "--run", str(nope)]), "report", nope)
    code = main(["export-bundle", "--run", str(nope), "--out", str(tmp_path / "b")])
    _assert_one_line_error(capsys, code, "export-bundle", nope)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("x")
    code = main(["export-bundle", "--run", str(generator_file), "--out", str(tmp_path / "b")])
    _assert_one_line_error(capsys, code, "export-bundle", tmp_path / "b", "--overwrite")


@pytest.mark.parametrize("cls", [getattr(errors, name) for name in errors.__all__])
def test_every_project_error_is_one_line(cls, monkeypatch, capsys):
    def fail(config):
        raise cls("runs/gan/checkpoints/ckpt_10.pt: something is wrong\nsecond line of detail")

    monkeypatch.setattr("medgan_aug.apps.train.train_gan", fail)
    err = _assert_one_line_error(capsys, main(["train", "--out", "runs/gan"]), "train", "ckpt_10.pt")
    assert err.endswith("something is wrong; second line of detail")


# -------------------------------------------------------------------------------------- operating system


@pytest.fixture
def unwritable(tmp_path):
    """(folder, causes): nothing can be created in ``folder``, and the causes the system may give. Mode 0o555
    for a user; root ignores modes, so for root a regular file stands in for the folder (ENOTDIR, or EEXIST
    where a command creates the folder itself)."""
    if os.geteuid() == 0:
        blocker = tmp_path / "a_file"
        blocker.write_text("")
        yield blocker, (os.strerror(errno.ENOTDIR), os.strerror(errno.EEXIST))
        return
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder, (os.strerror(errno.EACCES),)
    folder.chmod(0o755)


def test_unwritable_out_is_one_line_for_every_writing_command(
    unwritable, chest28_path, generator_file, tmp_path, capsys
):
    folder, causes = unwritable
    train = f"train --path {chest28_path} --base-channels 8 --iterations 1 --no-progress".split()
    classify = f"classify --path {chest28_path} --fraction 0.1 --iterations 1 --no-progress".split()
    bundle = ["export-bundle", "--run", str(generator_file)]
    study = ["study", "--config", "quick", "--sample", "nih1000", "--no-progress"]
    for argv in (train, classify, bundle, study):
        code = main([*argv, "--out", str(folder / "out")])
        err = _assert_one_line_error(capsys, code, argv[0], folder)
        assert err.endswith(causes), err


def test_out_that_is_a_file_is_one_line(chest28_path, tmp_path, capsys):
    a_file = tmp_path / "results"
    a_file.write_text("")
    argv = f"train --path {chest28_path} --base-channels 8 --out {a_file} --no-progress".split()
    _assert_one_line_error(capsys, main(argv), "train", a_file, "is a file, not a folder")
    argv = f"classify --path {chest28_path} --out {a_file} --no-progress".split()
    _assert_one_line_error(capsys, main(argv), "classify", a_file, "is a file, not a folder")
    assert a_file.read_text() == ""


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_full_or_read_only_disk_is_one_line(code, chest28_path, tmp_path, monkeypatch, capsys):
    def refuse(path, text):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr("medgan_aug.apps.train.atomic_write_text", refuse)
    out = tmp_path / "run"
    argv = ["train", "--path", str(chest28_path), "--base-channels", "8", "--out", str(out), "--no-progress"]
    err = _assert_one_line_error(capsys, main(argv), "train", out / "config.json", os.strerror(code))
    assert err.endswith(f"{out / 'config.json'}: {os.strerror(code)}")


def test_a_full_disk_while_saving_weights_names_the_file(generator_file, tmp_path, torch_disk_full, capsys):
    out = tmp_path / "bundle"
    code = main(["export-bundle", "--run", str(generator_file), "--out", str(out)])
    model = out / "models" / "model.pt"
    err = _assert_one_line_error(capsys, code, "export-bundle", model, os.strerror(errno.ENOSPC))
    assert err.endswith(f"{model}: {os.strerror(errno.ENOSPC)}") and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt"]  # no temporary folder left


def test_an_os_error_without_a_file_name_names_out(monkeypatch, capsys):
    def full(config):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("medgan_aug.apps.train.train_gan", full)
    _assert_one_line_error(capsys, main(["train", "--out", "runs/x"]), "train", "ENOSPC", "--out is runs/x")


def test_one_line_messages():
    assert (
        one_line_message(OSError(errno.EXDEV, "x", "a", None, "b")) == f"a -> b: {os.strerror(errno.EXDEV)}"
    )
    assert one_line_message(KeyError("data.flag is missing")) == "data.flag is missing"
    assert one_line_message(FileExistsError("out exists; pass --overwrite")) == "out exists; pass --overwrite"
    assert one_line_message(ValueError()) == "ValueError"
    assert one_line_message(RuntimeError("a bug")) is None and one_line_message(AssertionError()) is None


@pytest.mark.slow
def test_closed_stdout_is_one_line(chest28_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "medgan_aug", "data", "info", "--path", str(chest28_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # like `| head` that has already exited
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 1, err
    assert err.splitlines() == ["medgan-aug data: error: standard output was closed early (Broken pipe)"]


def test_interrupt_is_one_line_and_exit_130(monkeypatch, capsys):
    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr("medgan_aug.apps.train.train_gan", interrupted)
    assert main(["train", "--out", "runs/x"]) == 130
    assert capsys.readouterr().err == "medgan-aug train: interrupted\n"


def test_bugs_keep_their_traceback(monkeypatch, capsys):
    def bug(config):
        raise RuntimeError("a real bug")

    monkeypatch.setattr("medgan_aug.apps.train.train_gan", bug)
    with pytest.raises(RuntimeError, match="a real bug"):
        main(["train", "--out", "runs/x"])

    def bad_value(config):
        raise ValueError("bad input")

    monkeypatch.setattr("medgan_aug.apps.train.train_gan", bad_value)
    with pytest.raises(ValueError, match="bad input"):  # --traceback asks for the traceback of any error
        main(["--traceback", "train", "--out", "runs/x"])
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------------ warnings and engine logs


def test_warnings_are_one_line_without_source_lines(monkeypatch, capsys):
    import warnings

    def warn(config):
        warnings.warn("first part\nsecond part", UserWarning, stacklevel=2)
        warnings.warn("a third-party notice", FutureWarning, stacklevel=1)
        return Path("runs/x")

    monkeypatch.setattr("medgan_aug.apps.train.train_gan", warn)
    assert main(["train", "--out", "runs/x"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "medgan-aug train: warning: first part; second part",
        "medgan-aug train: warning: a third-party notice",
    ], err
    assert ".py" not in err and "warnings.warn" not in err


_DIVERGING_TRAIN = """
import sys
from medgan_aug.cli import main
from medgan_aug.networks.dcgan import DCGANDiscriminator

forward = DCGANDiscriminator.forward_with_aux

def nan_logits(self, x, labels=None):
    out, aux = forward(self, x, labels)
    return out * float("nan"), aux

DCGANDiscriminator.forward_with_aux = nan_logits
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_an_error_inside_the_engine_is_one_line_without_ignite_logs(tmp_path):
    """ignite logs "Engine run is terminating due to exception: ..." before re-raising; with no logging set
    up Python prints that on stderr, before the command's one-line error. Only the error line is left."""
    argv = (
        f"train --sample nih1000 --fraction 0.1 --iterations 3 --batch-size 16 --base-channels 8 --latent-dim 16 "
        f"--n-samples 4 --standing-stats-batches 1 --threads 1 --no-progress --out {tmp_path / 'run'}"
    ).split()
    proc = subprocess.run(
        [sys.executable, "-c", _DIVERGING_TRAIN, *argv], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("medgan-aug train: error: GAN training diverged"), lines


# ----------------------------------------------------------------------------- one consistent, instant CLI


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) for every subcommand, nested ones (``data info``) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _parsers(sub, (*path, name))


_HELP_WITHOUT_TORCH = """
import argparse, contextlib, io, sys
from medgan_aug.cli import build_parser

def commands(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name)
                yield from commands(sub, (*path, name))

for path in [(), *commands(build_parser())]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        build_parser().parse_args([*path, "--help"])
heavy = ("torch", "monai", "ignite", "medgan_aug.metrics", "medgan_aug.engines", "matplotlib", "sklearn")
print(sorted(name for name in heavy if name in sys.modules))
"""


def test_help_imports_no_torch():
    """``medgan-aug --help`` and every ``medgan-aug CMD --help`` answer without torch, MONAI or the metrics (a
    fresh interpreter: this test process has them imported already)."""
    proc = subprocess.run(
        [sys.executable, "-c", _HELP_WITHOUT_TORCH], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout


# a concept and the one flag every command names it with; the other names must not be listed in any --help
_SAME_CONCEPT = {"--no-progress": ("--quiet", "--progress", "--verbose"), "--run": ("--gan-run", "--run-dir")}


def test_every_subcommand_help_is_consistent(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per option, so the checks see whole help texts
    parsers = list(_parsers(build_parser()))
    assert {path for path, _ in parsers} >= {
        ("train",),
        ("classify",),
        ("generate",),
        ("study",),
        ("data", "info"),
    }
    for path, parser in parsers:
        name = " ".join(path)
        assert (parser.description or "").strip(), f"`medgan-aug {name}` has no description"
        text = parser.format_help()
        listed = {s for a in parser._actions if a.help != argparse.SUPPRESS for s in a.option_strings}
        for flag, others in _SAME_CONCEPT.items():
            assert not listed & set(others), (name, flag, listed & set(others))
        for shown in ("(default: True)", "(default: False)", "(default: None)"):
            assert shown not in text, (name, shown)
        assert not re.search(r"\(default(?!: )", text), (name, "a default not written '(default: X)'")
        if "--device" in listed:  # a command that computes takes both
            assert "--threads" in listed, name
    for command in ("train", "classify", "generate", "report", "study"):
        assert "--no-progress" in _option_strings(command), command


def test_former_option_names_still_parse():
    args = build_parser().parse_args(["classify", "--out", "o", "--gan-run", "runs/gan"])
    assert args.gan_run == "runs/gan"
    assert build_parser().parse_args(["classify", "--out", "o", "--run", "runs/g2"]).gan_run == "runs/g2"
    assert build_parser().parse_args(["classify", "--out", "o"]).gan_run is None
    generate = ["generate", "--run", "r", "--num", "1", "--out", "o.npz"]
    assert build_parser().parse_args([*generate, "--quiet"]).no_progress is True
    assert build_parser().parse_args([*generate, "--no-progress"]).no_progress is True
    assert build_parser().parse_args(generate).no_progress is False
    assert build_parser().parse_args(["study", "--config", "quick", "--out", "o"]).shard == (0, 1)
