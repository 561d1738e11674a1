"""A study config is checked whole when it loads: every bad value of every section stops the study before
its first GAN, in one line naming the key."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from medgan_aug.apps.study.config import StudyConfig, expand_grid, load_study_config
from medgan_aug.cli import main

# (the config's entries on top of a valid one, a part of the message naming the key and the problem)
BAD_CONFIGS = [
    ({"bootstrap": {"n_boot": -1}}, "bootstrap.n_boot must be an integer >= 1, got -1"),
    ({"bootstrap": {"n_boot": 1.5}}, "bootstrap.n_boot must be an integer >= 1, got 1.5"),
    ({"bootstrap": {"n_bot": 5}}, "bootstrap: unknown key(s) ['n_bot']"),
    ({"classifier": {"iterations": -5}}, "classifier.iterations must be an integer >= 1, got -5"),
    ({"classifier": {"batch_size": 0}}, "classifier.batch_size must be an integer >= 1, got 0"),
    ({"classifier": {"lr": 0}}, "classifier.lr must be a positive finite number, got 0"),
    ({"classifier": {"lr": "fast"}}, "classifier.lr must be a positive finite number, got 'fast'"),
    ({"classifier": 5}, "classifier must be a mapping of settings, got int 5"),
    ({"synthetic": {"num_samples": 0}}, "synthetic.num_samples must be an integer >= 1, got 0"),
    ({"evaluation": {"num_samples": 5}}, "evaluation.num_samples must be an integer >= 20, got 5"),
    ({"evaluation": {"repeats": 0}}, "evaluation.repeats must be an integer >= 1, got 0"),
    ({"evaluation": {"extractor_iterations": -1}}, "evaluation.extractor_iterations must be an integer >= 1"),
    ({"evaluation": {"enabled": "yes"}}, "evaluation.enabled must be true or false, got 'yes'"),
    ({"fractions": []}, "fractions must be a non-empty list, got []"),
    ({"fractions": 0.5}, "fractions must be a non-empty list, got 0.5"),
    ({"fractions": [0.5, 0.5]}, "fractions: 0.5 is listed twice"),
    ({"fractions": [1, 1.0]}, "fractions: 1.0 is listed twice"),
    ({"fractions": [True]}, "fractions must be in (0, 1], got True"),
    ({"seeds": [0, 0]}, "seeds: 0 is listed twice"),
    ({"seeds": []}, "seeds must be a non-empty list, got []"),
    ({"seeds": [-1]}, "seeds must be integers in [0, 4294967295], got -1"),
    ({"seeds": [2**32]}, "got 4294967296"),
    (
        {"conditions": ["real", "real+classical", "real+classical"]},
        "conditions: 'real+classical' is listed twice",
    ),
    (
        {"conditions": ["real", "real+synthetic@0.5", "real+synthetic@.5"]},
        "conditions: 'real+synthetic@.5' is the same condition as 'real+synthetic@0.5'",
    ),
    ({"conditions": ["real", "real+flip"]}, "unknown condition 'real+flip'"),
    ({"classifiers": ["small_cnn", "small_cnn"]}, "classifiers: 'small_cnn' is listed twice"),
    ({"classifiers": []}, "classifiers must be a non-empty list, got []"),
    ({"classifier_seeds": 0}, "classifier_seeds must be an integer >= 1, got 0"),
    ({"gan": {"iterations": -5}}, "gan.iterations must be an integer >= 1, got -5"),
    ({"gan": {"batch_size": 0}}, "gan.batch_size must be an integer >= 1, got 0"),
    ({"gan": {"lr_g": 0}}, "gan.lr_g must be a positive number, got 0"),
    ({"gan": {"loss": "wasserstein"}}, "gan.loss must be one of"),
    ({"gan": {"diffaugment": "color,zoom"}}, "gan: "),
    ({"gan": [1, 2]}, "gan must be a mapping of GAN settings"),
    ({"data": {"flag": "nosuchmnist"}}, "data.flag: unknown MedMNIST flag 'nosuchmnist'"),
    ({"data": {"flag": "chestmnist", "size": 100}}, "data.size must be one of (28, 64, 128, 224)"),
    ({"data": {"flag": "chestmnist", "size": 128}}, "data.size must be 28 or 64 where conditions use"),
    ({"data": {"flag": "chestmnist", "download": "yes"}}, "data.download must be true or false, got 'yes'"),
    ({"data": {"flag": "chestmnist", "pth": "x.npz"}}, "data: unknown key(s) ['pth']"),
    ({"data": "chestmnist"}, "data must be a mapping"),
    ({"primary": ["real+synthetic@0.5"]}, "primary must be a mapping"),
    ({"primary": {"condition": "real+mixup"}}, "primary: condition must be one of the conditions"),
    ({"name": ""}, "name must be a non-empty string"),
    ({"device": "gpu"}, "device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got 'gpu'"),
]

VALID = {
    "data": {"flag": "chestmnist"},
    "fractions": [0.1, 1.0],
    "seeds": [0, 1],
    "conditions": ["real", "real+synthetic@0.5"],
}


def write_config(folder: Path, entries: dict) -> Path:
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump({**VALID, **entries}))
    return path


@pytest.mark.parametrize("entries,message", BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_every_bad_value_is_refused_at_load_in_one_line_naming_its_key(tmp_path, entries, message):
    path = write_config(tmp_path, entries)
    started = time.perf_counter()
    with pytest.raises(ValueError) as caught:
        load_study_config(path)
    assert time.perf_counter() - started < 1.0  # nothing trained, nothing read but the config
    text = str(caught.value)
    assert "\n" not in text and text.startswith(f"study config {path}: ")
    assert message in text


@pytest.mark.parametrize(
    "entries,message",
    [
        ({"bootstrap": {"n_boot": -1}}, "bootstrap.n_boot"),
        ({"classifier": {"iterations": -5}}, "classifier.iterations"),
        ({"classifier": {"batch_size": 0}}, "classifier.batch_size"),
        ({"synthetic": {"num_samples": 0}}, "synthetic.num_samples"),
        ({"fractions": []}, "fractions must be a non-empty list"),
        ({"seeds": [0, 0]}, "seeds: 0 is listed twice"),
    ],
)
def test_the_study_command_stops_before_any_work(tmp_path, capsys, chest28_path, entries, message):
    """The issue's cases, through the command: exit 1, one line, and no study folder (no GAN) made."""
    path = write_config(tmp_path, {**entries, "data": {"path": str(chest28_path), "flag": "chestmnist"}})
    out = tmp_path / "out"
    started = time.perf_counter()
    code = main(["study", "--config", str(path), "--out", str(out), "--threads", "1", "--no-progress"])
    assert time.perf_counter() - started < 5.0
    assert code == 1 and not out.exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(path) in err


def test_a_config_changed_after_loading_is_checked_before_any_work(tmp_path, chest28_path):
    from medgan_aug.apps.study.study import run_study

    config = load_study_config("quick", path=str(chest28_path))
    config.bootstrap = {"n_boot": 0}
    with pytest.raises(ValueError, match=re.escape("bootstrap.n_boot must be an integer >= 1, got 0")):
        run_study(config, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_the_announced_grid_is_the_grid_run():
    config = StudyConfig(data={"flag": "chestmnist"}, fractions=[0.1, 0.5], seeds=[3, 1], classifier_seeds=2)
    grid = expand_grid(config)
    assert len(grid) == len(set(grid)) == 2 * 2 * len(config.conditions) * 2


def test_valid_sections_build_their_objects_with_defaults(tmp_path):
    path = write_config(tmp_path, {"classifier": {"iterations": 7}, "evaluation": {"enabled": False}})
    config = load_study_config(path)
    assert config.classifier == {"iterations": 7}  # as written: the run keys hash it
    assert (config.classifier_budget.iterations, config.classifier_budget.batch_size) == (7, 64)
    assert config.synthetic_budget.num_samples == 5000 and config.bootstrap_settings.n_boot == 1000
    assert config.evaluation_settings.enabled is False and config.evaluation_settings.num_samples == 500
