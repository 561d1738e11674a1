"""The study grid: conditions, configs, keys, sharding, resume, and a reduced quick study end to end."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from medgan_aug.apps.study import runner as study_runner
from medgan_aug.apps.study.archive import pack_study
from medgan_aug.apps.study.config import (
    RunSpec,
    StudyConfig,
    data_identity,
    expand_grid,
    finished_keys,
    gan_key,
    load_study_config,
    parse_condition,
    run_key,
    select_shard,
    study_lock,
)
from medgan_aug.apps.study.study import run_study
from medgan_aug.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "experiments" / "configs"


def test_conditions_parse_and_refuse():
    assert parse_condition("real") == parse_condition("real")
    assert parse_condition("real+synthetic@0.25+classical").synthetic_ratio == 0.25
    assert parse_condition("real+synthetic@0.25+classical").classical
    assert parse_condition("synthetic-only").synthetic_ratio == 1.0
    for bad in (
        "synthetic",
        "real+synthetic@1.5",
        "real+synthetic@x",
        "real+flip",
        "real+classical+classical",
    ):
        with pytest.raises(ValueError, match=re.escape(f"unknown condition {bad!r}")):
            parse_condition(bad)


def test_every_shipped_config_loads(chest28_path):
    names = sorted(p.name for p in CONFIGS.glob("*.yaml"))
    assert {"chestmnist.yaml", "nih1000_chestmnist.yaml", "pneumoniamnist_union.yaml"} <= set(names)
    for name in names:
        config = load_study_config(CONFIGS / name)
        assert config.conditions[0] == "real" and config.fractions and config.seeds
    overridden = load_study_config(CONFIGS / "chestmnist.yaml", path=str(chest28_path))
    assert overridden.data["path"] == str(chest28_path) and "download" not in overridden.data
    by_sample = load_study_config(CONFIGS / "nih1000_chestmnist.yaml", sample="nih1000")
    assert by_sample.data["path"] == str(chest28_path) and by_sample.data["sample"] == "nih1000"


def test_packaged_quick_config_runs_on_the_shipped_sample(chest28_path):
    quick = load_study_config("quick")
    assert quick.name == "quick" and quick.data["sample"] == "nih1000"
    assert quick.data["path"] == str(chest28_path)  # sample_path: the package's file, MD5-checked
    with pytest.raises(FileNotFoundError, match="packaged configs: quick"):
        load_study_config("no-such-config")
    with pytest.raises(ValueError, match="give one source"):
        StudyConfig(data={"sample": "nih1000", "path": str(chest28_path)})


def test_shipped_sample_has_the_shared_files_run_keys(chest28_shared_path):
    """The packaged sample is the shared file byte for byte, so studies keep their run keys and results."""
    shared = chest28_shared_path
    run = RunSpec(0.25, 0, "real+synthetic@0.5", "small_cnn")
    by_path = StudyConfig(data={"path": str(shared), "flag": "chestmnist"})
    by_sample = StudyConfig(data={"sample": "nih1000"})
    assert data_identity(by_path) == data_identity(by_sample)
    assert run_key(by_path, run) == run_key(by_sample, run)


def test_device_is_validated_overridable_and_not_in_any_key(monkeypatch):
    import torch

    from medgan_aug.apps.study import runner

    config = load_study_config("quick")
    assert config.device == "cpu" and load_study_config("quick", device="cuda:1").device == "cuda:1"
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got 'gpu'"):
        load_study_config("quick", device="gpu")
    on_gpu = dataclasses.replace(config, data={"flag": "chestmnist"}, device="cuda")
    on_cpu = dataclasses.replace(on_gpu, device="cpu")
    run = RunSpec(0.25, 0, "real+synthetic@0.5", "small_cnn")
    assert run_key(on_gpu, run) == run_key(on_cpu, run)  # like threads: where it runs is not what it is
    # under torchrun a bare "cuda" is this process's own GPU (no GPU needed to check the arithmetic)
    monkeypatch.setattr(runner, "resolve_device", lambda name: torch.device(name))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert runner.process_device(on_gpu) == "cuda:1"
    assert runner.process_device(dataclasses.replace(on_gpu, device="cuda:0")) == "cuda:0"  # named: kept
    assert runner.process_device(on_cpu) == "cpu"


def test_config_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("fractions: [0.1]\nsedes: [0]\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown key\(s\) \['sedes'\]"):
        load_study_config(bad)
    bad.write_text("fractions: [0, 0.5]\n")
    with pytest.raises(ValueError, match=r"bad.yaml: fractions must be in \(0, 1\], got 0"):
        load_study_config(bad)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_study_config(tmp_path / "nope.yaml")


def test_shards_partition_the_grid_by_group():
    config = StudyConfig(
        fractions=[0.1, 0.25, 0.5],
        seeds=[0, 1, 2],
        conditions=["real", "synthetic-only"],
        classifiers=["small_cnn", "resnet18"],
        data={"flag": "chestmnist"},
    )
    grid = expand_grid(config)
    assert len(grid) == 3 * 3 * 2 * 2 and len(set(grid)) == len(grid)
    for count in (1, 2, 4, 7):
        shards = [select_shard(grid, (i, count)) for i in range(count)]
        assert sorted(sum(shards, []), key=grid.index) == grid  # every run exactly once
        for shard in shards:  # a (fraction, seed) group never splits, so no GAN is trained twice
            groups = {r.group for r in shard}
            assert all(r in shard for r in grid if r.group in groups)
    with pytest.raises(ValueError, match="0 <= i < n, got 2/2"):
        select_shard(grid, (2, 2))


def test_run_keys_change_with_every_setting(chest28_path):
    config = StudyConfig(
        data={"path": str(chest28_path), "flag": "chestmnist"}, conditions=["real", "synthetic-only"]
    )
    run = RunSpec(0.1, 0, "synthetic-only", "small_cnn")
    key = run_key(config, run)
    assert key == run_key(config, RunSpec(0.1, 0, "synthetic-only", "small_cnn"))
    assert key != run_key(config, dataclasses.replace(run, seed=1))
    assert key != run_key(dataclasses.replace(config, gan={"iterations": 5}), run)
    assert key != run_key(dataclasses.replace(config, classifier={"iterations": 5}), run)
    real = RunSpec(0.1, 0, "real", "small_cnn")  # a real-only run does not depend on the GAN's settings
    assert run_key(config, real) == run_key(dataclasses.replace(config, gan={"iterations": 5}), real)


def tiny_config(path: Path, conditions: list[str], **budgets) -> StudyConfig:
    config = load_study_config("quick", path=str(path))
    config.conditions = conditions
    config.gan = {
        **config.gan,
        "iterations": 12,
        "batch_size": 16,
        "base_channels": 8,
        **budgets.get("gan", {}),
    }
    config.classifier = {"iterations": 15, "batch_size": 32, "lr": 0.001}
    config.synthetic = {"num_samples": 96}
    config.bootstrap = {"n_boot": 50}
    config.evaluation = {"num_samples": 64, "repeats": 1, "extractor_iterations": 20}
    return config


@pytest.mark.slow
def test_resume_skips_finished_runs(tmp_path, chest28_path, monkeypatch):
    config = tiny_config(chest28_path, ["real", "real+classical"])
    out = run_study(config, tmp_path / "out", progress=False)
    assert len(finished_keys(out)) == 4  # 2 fractions x 1 seed x 2 conditions
    before = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    calls = []
    monkeypatch.setattr(study_runner, "run_group", lambda *a, **k: calls.append((a, k)) or [])
    run_study(config, out, progress=False)
    assert calls == [] and before == {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    config.seeds = [0, 1]  # a grown grid runs only what is new
    run_study(config, out, progress=False)
    # the stand-in finishes nothing, as if another process held the runs: a second pass waits for them
    assert [(sorted({r.seed for r in a[1]}), k["wait"]) for a, k in calls] == [
        ([1], False),
        ([1], False),
        ([1], True),
        ([1], True),
    ]


@pytest.mark.slow
def test_quick_config_end_to_end_and_leak_free(tmp_path, chest28_path, monkeypatch):
    """The quick config's grid on a reduced budget; the GAN of a subset only ever holds that subset's images."""
    from medgan_aug.data import batches as training
    from medgan_aug.data.medmnist import MedMNISTDataset
    from medgan_aug.data.stratify import low_data_indices
    from medgan_aug.networks.model_file import load_generator

    seen: list[np.ndarray] = []
    original_init = training.SeededBatches.__init__

    def recording_init(self, images, labels, batch_size, seed):
        seen.append(((images + 1) * 127.5).round().to(dtype=__import__("torch").uint8).numpy())
        original_init(self, images, labels, batch_size, seed)

    monkeypatch.setattr(training.SeededBatches, "__init__", recording_init)
    config = tiny_config(chest28_path, load_study_config("quick").conditions)
    out = run_study(config, tmp_path / "quick", progress=False)

    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == len(config.fractions) * len(config.seeds) * len(config.conditions)
    assert {r["condition"] for r in rows} == set(config.conditions)
    assert {r["device"] for r in rows} == {"cpu"}  # each run records where it ran
    assert all(0.0 <= float(r["auc"]) <= 1.0 for r in rows)
    assert all(r["skipped_labels"] == "hernia" for r in rows)  # 0 positives in the test split
    assert all("auc_hernia" in r and r["auc_hernia"] == "" for r in rows)
    for r in rows:  # the generator's evaluation numbers sit beside every run that used a GAN
        uses_gan = r["condition"] in ("real+synthetic@0.5", "synthetic-only")
        assert (r["gan_fd"] != "") == uses_gan and (r["gan_memorized_share"] != "") == uses_gan
        if uses_gan:
            assert float(r["gan_fd"]) > 0 and 0 <= float(r["gan_precision"]) <= 1
    summary = (out / "summary.md").read_text()
    assert "Generators" in summary and "memorized" in summary
    assert "ΔAUC vs real" in summary and "synthetic-only" in summary and "Protocol" in summary
    # NIH1000 knows its patients: scores carry them and the test level resamples the 53 test patients
    assert "ΔAUC [95% CI: seeds + test patients (53)]" in summary
    with np.load(next((out / "scores").glob("*.npz"))) as npz:
        assert npz["patients"].tolist() == MedMNISTDataset(path=chest28_path, split="test").patients.tolist()
    for figure in ("auc_vs_fraction.png", "delta_auc_vs_fraction.png"):
        assert (out / figure).stat().st_size > 5000

    train = MedMNISTDataset(path=chest28_path, split="train")
    row_of = {image.tobytes(): i for i, image in enumerate(train.images)}
    assert len(seen) == len(config.fractions)  # one GAN per (fraction, seed)
    for fraction, images in zip(config.fractions, seen):
        subset = low_data_indices(train.labels, fraction=fraction, seed=0)
        rows_seen = sorted(row_of[image[0].tobytes()] for image in images)
        assert rows_seen == subset.tolist()  # exactly the subset: nothing from outside it
        gan_dir = next(
            p
            for p in (out / "gans").iterdir()
            if json.loads((p / "config.json").read_text())["subset"]["fraction"] == fraction
        )
        _, meta = load_generator(gan_dir / "generator.pt")
        assert np.array_equal(
            np.asarray(meta["train_labels"]), train.labels[subset]
        )  # label pool: subset only
    # the archive: summary.md rebuilt from records and scores alone, byte for byte (GAN folders gone)
    archive = tmp_path / "scores_archive.npz"
    assert cli_main(["study-archive", "pack", "--study", str(out), "--archive", str(archive)]) == 0
    text_archive = tmp_path / "scores_archive.json.gz"  # the committable text form (per-finding ranks)
    assert cli_main(["study-archive", "pack", "--study", str(out), "--archive", str(text_archive)]) == 0
    shutil.rmtree(out / "gans")
    rebuilt = tmp_path / "rebuilt"
    args = ["study-archive", "rebuild", "--archive", str(archive), "--out", str(rebuilt)]
    assert cli_main([*args, "--check", str(out / "summary.md")]) == 0
    assert (rebuilt / "results.csv").read_bytes() == (out / "results.csv").read_bytes()
    assert "Generators" in (rebuilt / "summary.md").read_text()  # the GANs' numbers came from the archive
    # the text form rebuilds the same bytes
    from_text = tmp_path / "rebuilt_from_text"
    text_args = ["study-archive", "rebuild", "--archive", str(text_archive), "--out", str(from_text)]
    assert cli_main([*text_args, "--check", str(out / "summary.md")]) == 0
    assert (from_text / "results.csv").read_bytes() == (out / "results.csv").read_bytes()
    # packing after the GAN folders are gone would drop the Generators table: refused, naming the file
    with pytest.raises(FileNotFoundError, match="metrics.json is gone, but results.csv shows"):
        pack_study(out, tmp_path / "late.json.gz")
    assert not (tmp_path / "late.json.gz").exists()
    (out / "summary.md").write_text(summary.replace("Protocol", "Protokoll"))
    shutil.rmtree(rebuilt)
    assert cli_main([*args, "--check", str(out / "summary.md")]) == 1  # a changed summary is caught


@pytest.mark.parametrize(
    "text,message",
    [
        ("classifier: {itertions: 5}\n", r"classifier: unknown key\(s\) \['itertions'\]"),
        ("gan: {iteratons: 5}\n", r"gan: unknown or study-controlled key\(s\) \['iteratons'\]"),
        ("gan: {fraction: 0.5}\n", r"gan: unknown or study-controlled key\(s\) \['fraction'\]"),
        ("classifiers: [vgg]\n", r"classifiers must be names from \('small_cnn', 'resnet18'\), got 'vgg'"),
        ("evaluation: {repeat: 2}\n", r"evaluation: unknown key\(s\) \['repeat'\]"),
    ],
)
def test_typos_in_config_sections_are_refused(tmp_path, text, message):
    path = tmp_path / "typo.yaml"
    path.write_text("data: {flag: chestmnist}\n" + text)
    with pytest.raises(ValueError, match=message):
        load_study_config(path)


@pytest.mark.slow
def test_summary_leaves_out_runs_of_other_configs(tmp_path, chest28_path):
    config = tiny_config(chest28_path, ["real", "real+classical"])
    config.fractions = [1.0]
    out = run_study(config, tmp_path / "out", progress=False)
    config.classifier = {**config.classifier, "iterations": 10}  # a changed budget: new keys, same folder
    config.conditions = ["real"]
    run_study(config, out, progress=False)
    assert len(list((out / "runs").glob("*.json"))) == 3
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [(r["condition"], r["classifier_iterations"]) for r in rows] == [("real", "10")]


def test_gan_killed_before_its_first_checkpoint_is_restarted(tmp_path, chest28_path):
    from medgan_aug.apps.study.runner import ensure_gan

    config = tiny_config(chest28_path, ["real", "synthetic-only"])
    run_dir = (
        tmp_path
        / "gans"
        / __import__("medgan_aug.apps.study.config", fromlist=["gan_key"]).gan_key(config, 1.0, 0)
    )
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")  # what a kill right after start leaves
    gan_dir, seconds = ensure_gan(config, 1.0, 0, tmp_path, 28)
    assert gan_dir == run_dir and (run_dir / "generator.pt").is_file() and seconds > 0
    assert (
        json.loads((run_dir / "config.json").read_text())["training_seconds"] == seconds
    )  # the run's record
    assert ensure_gan(config, 1.0, 0, tmp_path, 28) == (run_dir, seconds)  # reused, not retrained


def test_reused_gan_trained_with_other_settings_is_named(tmp_path, chest28_path):
    """A finished GAN from before a default changed is reused (nothing retrained or lost), with a warning
    naming what differs; one trained as the study would train it now is reused silently."""
    import warnings

    from medgan_aug.apps.study.config import gan_key
    from medgan_aug.apps.study.runner import ensure_gan

    config = tiny_config(chest28_path, ["real", "synthetic-only"])
    run_dir, seconds = ensure_gan(config, 1.0, 0, tmp_path, 28)
    mtime = (run_dir / "generator.pt").stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as trained now: no warning
        assert ensure_gan(config, 1.0, 0, tmp_path, 28) == (run_dir, seconds)
    record = json.loads((run_dir / "config.json").read_text())
    # what a run written before the speed settings and AC-GAN's loss existed records: no such keys, fp32
    for key in ("precision", "channels_last", "aux_weight"):
        record["config"].pop(key)
    record.pop("precision_used")
    (run_dir / "config.json").write_text(json.dumps(record))
    with pytest.warns(UserWarning, match="reusing the finished GAN") as caught:
        assert ensure_gan(config, 1.0, 0, tmp_path, 28) == (run_dir, seconds)
    message = str(caught[0].message)
    assert str(run_dir) in message and "aux_weight: saved 0.0 vs now 1.0" in message
    assert "channels_last: saved False vs now True" in message
    assert (run_dir / "generator.pt").stat().st_mtime_ns == mtime  # reused, not retrained
    assert run_dir.name == gan_key(config, 1.0, 0)


def test_arms_see_the_same_real_batches(chest28_path):
    """Pairing: with one seed, the mixed arm's real rows are exactly the real arm's batches, row for row."""
    import torch

    from medgan_aug.data.medmnist import MedMNISTDataset
    from medgan_aug.data.synthetic import SyntheticDataset
    from medgan_aug.engines.classifier_trainer import train_classifier
    from medgan_aug.networks.classifiers import build_classifier
    from medgan_aug.networks.dcgan import DCGANGenerator
    from medgan_aug.transforms.mix import MixSyntheticd

    train = MedMNISTDataset(path=chest28_path, indices=np.arange(100))
    torch.manual_seed(0)
    source = SyntheticDataset(
        DCGANGenerator(28, num_labels=14, base_channels=8), 64, label_pool=train.targets
    )

    class Recorder:
        def __init__(self, inner=None):
            self.inner, self.before, self.after = inner, [], []

        def set_random_state(self, seed=None, state=None):
            if self.inner is not None:
                self.inner.set_random_state(seed, state)
            return self

        def __call__(self, batch):
            self.before.append({k: v.clone() for k, v in batch.items()})
            batch = self.inner(batch) if self.inner is not None else batch
            self.after.append(batch)
            return batch

    arms = {}
    for name, inner in (("real", None), ("mixed", MixSyntheticd(source=source, ratio=0.5))):
        arms[name] = Recorder(inner)
        model = build_classifier("small_cnn", 1, 14, 28, seed=3)
        train_classifier(
            model, train, task=train.task, iterations=4, batch_size=16, seed=3, batch_transform=arms[name]
        )
    for real, before, after in zip(arms["real"].before, arms["mixed"].before, arms["mixed"].after):
        assert torch.equal(real["image"], before["image"]) and torch.equal(real["label"], before["label"])
        kept = ~after["synthetic"]
        assert int(after["synthetic"].sum()) == 8
        assert torch.equal(after["image"][kept], real["image"][kept])


# Two runs (real and real+synthetic) of one group, with tiny budgets: the runs of a real study, in seconds.
TWO_RUNS_STUDY = """\
name: two-processes
data: {sample: nih1000}
fractions: [0.25]
seeds: [0]
conditions: [real, real+synthetic@0.5]
gan: {conditional: true, iterations: 10, batch_size: 16, base_channels: 8, sample_every: 10, checkpoint_every: 10}
classifier: {iterations: 10, batch_size: 32}
synthetic: {num_samples: 64}
bootstrap: {n_boot: 20}
evaluation: {enabled: false}
"""


def start_study(config: Path, out: Path) -> subprocess.Popen:
    """``medgan-aug study`` in a process of its own, on this checkout."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = ["study", "--config", str(config), "--out", str(out), "--threads", "1", "--no-progress"]
    return subprocess.Popen(
        [sys.executable, "-m", "medgan_aug", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def results_without_timings(out: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(open(out / "results.csv")))
    return [{name: value for name, value in row.items() if "seconds" not in name} for row in rows]


@pytest.mark.slow
def test_two_processes_on_one_folder_train_each_run_once(tmp_path):
    """Two studies started together on one folder: no crash, every run and the GAN trained once, by one of
    them, and the same results.csv as one process alone."""
    config = tmp_path / "study.yaml"
    config.write_text(TWO_RUNS_STUDY)
    together = [start_study(config, tmp_path / "shared") for _ in range(2)]
    alone = start_study(config, tmp_path / "alone")
    logs = []
    for process in [*together, alone]:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        logs.append(stderr)
    study = load_study_config(config)
    keys = {run_key(study, run) for run in expand_grid(study)}
    shared_log = logs[0] + logs[1]
    assert Counter(re.findall(r"^finished ([0-9a-f]+):", shared_log, re.M)) == {key: 1 for key in keys}
    assert len(re.findall(r"^training GAN ", shared_log, re.M)) == 1
    assert results_without_timings(tmp_path / "shared") == results_without_timings(tmp_path / "alone")
    assert len(results_without_timings(tmp_path / "shared")) == 2
    assert "2 runs;" in (tmp_path / "shared" / "summary.md").read_text()


@pytest.mark.slow
def test_work_another_process_holds_is_left_to_it_and_a_killed_holder_blocks_nothing(
    tmp_path, chest28_path, lock_holder
):
    """A GAN folder another process is creating (its lock held) is neither deleted nor refused as a
    foreign run: its runs wait. Once that process is killed (SIGKILL), its lock is gone and the study
    finishes everything."""
    from medgan_aug.apps.study.runner import run_group

    config = tiny_config(chest28_path, ["real", "synthetic-only"])
    config.fractions = [0.25]
    runs = expand_grid(config)
    key = gan_key(config, 0.25, 0)
    creating = tmp_path / "gans" / key
    creating.mkdir(parents=True)
    (creating / "config.json").write_text("{}")  # what a GAN run has a moment after it starts
    holder = lock_holder(study_lock(tmp_path, f"gan-{key}"))

    rows = run_group(config, runs, tmp_path)  # first pass: skips the GAN and its run, does the rest
    assert [row["condition"] for row in rows] == ["real"]
    assert (creating / "config.json").read_text() == "{}" and not (creating / "generator.pt").exists()

    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    out = run_study(config, tmp_path, progress=False)  # the dead holder's half-made run is started again
    assert finished_keys(out) == {run_key(config, run) for run in runs}
    assert (creating / "generator.pt").is_file()
    assert [r["condition"] for r in csv.DictReader(open(out / "results.csv"))] == ["real", "synthetic-only"]


@pytest.mark.slow
def test_a_gan_another_process_evaluates_is_waited_for(tmp_path, chest28_path, lock_holder, monkeypatch):
    """evaluate_gans skips a GAN whose evaluation lock is held, comes back once it is free, and evaluates
    it then only if the other process left no metrics.json (here: it ended without one)."""
    config = tiny_config(chest28_path, ["real", "synthetic-only"])
    config.fractions, config.seeds = [0.25, 1.0], [0]
    gans = [tmp_path / "gans" / gan_key(config, fraction, 0) for fraction in config.fractions]
    for gan in gans:
        gan.mkdir(parents=True)
        (gan / "generator.pt").write_bytes(b"")  # a finished GAN, as far as evaluate_gans looks
    holder = lock_holder(study_lock(tmp_path, f"evaluation-{gans[0].name}"), seconds=3.0)
    evaluated = []

    def record(run_dir, **kwargs):
        evaluated.append((Path(run_dir).name, holder.poll() is None))
        (Path(run_dir) / "metrics.json").write_text("{}")

    monkeypatch.setattr(study_runner, "write_report", record)
    study_runner.evaluate_gans(config, expand_grid(config), tmp_path)
    # the free GAN first, while the other process still held its lock; the held one after it let go
    assert [name for name, _ in evaluated] == [gans[1].name, gans[0].name]
    assert evaluated[0][1] is True and holder.wait(timeout=10) == 0


def test_a_folder_holding_other_files_is_refused_before_anything_is_written(tmp_path, chest28_path, capsys):
    """A non-empty --out that is not a study of ours: nothing in it changes, and the first foreign file is
    named (results.csv and summary.md of the user's own count as foreign without a study's record)."""
    from medgan_aug.cli import main
    from medgan_aug.utils.errors import OutputNotOursError

    config = tiny_config(chest28_path, ["real"])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.csv").write_text("my,results\n")
    (mine / "summary.md").write_text("my notes\n")
    with pytest.raises(OutputNotOursError, match="holds results.csv but no study_config.json"):
        run_study(config, mine, progress=False)
    (mine / "notes.txt").write_text("x")
    with pytest.raises(OutputNotOursError, match="does not write there: notes.txt"):
        run_study(config, mine, progress=False)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "results.csv", "summary.md"]
    assert (mine / "results.csv").read_text() == "my,results\n"
    code = main(["study", "--config", "quick", "--out", str(mine), "--threads", "1", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "notes.txt" in err and str(mine) in err
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(OutputNotOursError, match="is a file, not a folder"):
        run_study(config, a_file, progress=False)


def test_what_counts_as_a_study_folder(tmp_path):
    from medgan_aug.apps.study.folder import study_folder_problem
    from medgan_aug.utils.temp_files import temp_name

    def folder(*names: str) -> Path:
        root = tmp_path / f"f{len(list(tmp_path.iterdir()))}"
        root.mkdir()
        for name in names:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text("x")
        return root

    study = ["study_config.json", "runs/0123456789ab.json", "scores/0123456789ab.npz", "results.csv"]
    study += ["summary.md", "auc_vs_fraction.png", "gans/k/generator.pt", "gans/k/samples/x.png"]
    study += ["extractors/e.pt", "locks/summary.lock", f"runs/{temp_name('0123456789ab.json', '.json')}"]
    assert study_folder_problem(tmp_path / "new") is None
    assert study_folder_problem(folder()) is None
    assert study_folder_problem(folder(*study)) is None
    killed_at_start = folder("locks/gan-k.lock", temp_name("study_config.json", ".json"))
    assert study_folder_problem(killed_at_start) is None
    assert "README.md" in study_folder_problem(folder(*study, "README.md"))
    assert "runs/notes.txt" in study_folder_problem(folder(*study, "runs/notes.txt"))
    assert "summary.md but no study_config.json" in study_folder_problem(folder("summary.md"))
    assert "scores/a.npz but no study_config.json" in study_folder_problem(folder("scores/a.npz"))


@pytest.mark.slow
def test_a_damaged_score_file_is_named_and_its_run_recomputed(tmp_path, chest28_path, caplog):
    """A truncated scores/<key>.npz: the summary names it in one line (no BadZipFile traceback), and the
    study started again trains that run anew, with the same numbers."""
    from medgan_aug.apps.study.summary import write_summary
    from medgan_aug.utils.errors import CorruptFileError

    config = tiny_config(chest28_path, ["real", "real+classical"])
    config.fractions = [1.0]
    out = run_study(config, tmp_path / "out", progress=False)
    before = results_without_timings(out)
    key = run_key(config, RunSpec(1.0, 0, "real+classical", "small_cnn"))
    scores = out / "scores" / f"{key}.npz"
    scores.write_bytes(scores.read_bytes()[:100])  # truncated
    with pytest.raises(CorruptFileError) as caught:
        write_summary(config, out)
    message = str(caught.value)
    assert str(scores) in message and "\n" not in message and "run the same medgan-aug study" in message
    with caplog.at_level("WARNING", logger="medgan_aug"):
        run_study(config, out, progress=False)
    assert f"score file {scores} cannot be read: run {key} is trained again" in caplog.text
    assert results_without_timings(out) == before
    with np.load(scores) as npz:
        assert npz["scores"].shape[0] == int(before[0]["n_test"])
