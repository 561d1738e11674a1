"""Resuming GAN runs in hard cases (medgan_aug.apps.train_resume): a folder killed before its first
checkpoint, extending a finished run, refusing an extension a decaying schedule makes unequal, orphaned
temporary files, training seconds across sessions, and ``python -m medgan_aug train`` SIGKILLed 10 times.

Tiny networks (base_channels 8, latent 16) on the packaged nih1000 sample, 10% subset (69 images).
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from engine_helpers import StopAt
from ignite.engine import Events

from medgan_aug.apps.train import GANConfig, train_gan
from medgan_aug.apps.train_resume import recorded_training_seconds
from medgan_aug.cli import main
from medgan_aug.handlers.checkpoint import CheckpointManager, load_checkpoint
from medgan_aug.networks.model_file import load_generator
from medgan_aug.utils.errors import ResumeError

TINY = dict(
    sample="nih1000",
    base_channels=8,
    latent_dim=16,
    batch_size=16,
    fraction=0.1,
    n_samples=4,
    standing_stats_batches=1,
    threads=1,
    progress=False,
)


def _cfg(out: Path, **kw) -> GANConfig:
    base = dict(
        TINY, conditional=True, iterations=20, checkpoint_every=6, n_saved=10, sample_every=10, seed=5
    )
    base.update(kw)
    return GANConfig(out=str(out), **base)


class _Slow:
    """Sleep ``seconds`` in every iteration (known training time)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, lambda e: time.sleep(self.seconds))


def _stopped(config: GANConfig, at: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(config, handlers=[StopAt(at)])


def _checkpoints(run: Path) -> list[int]:
    return [it for it, _ in CheckpointManager(run / "checkpoints").list()]


def _assert_same_generator(a: Path, b: Path) -> None:
    ga, _ = load_generator(a)
    gb, _ = load_generator(b)
    sa, sb = ga.state_dict(), gb.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


@pytest.fixture(scope="module")
def direct40(tmp_path_factory) -> Path:
    """A constant-schedule run trained to 40 iterations in one go."""
    return train_gan(_cfg(tmp_path_factory.mktemp("direct") / "run", iterations=40))


# ------------------------------------------------------------------------------ killed before a checkpoint


def test_resume_before_the_first_checkpoint_starts_from_zero(tmp_path):
    direct = train_gan(_cfg(tmp_path / "direct", iterations=8))
    out = tmp_path / "run"
    _stopped(_cfg(out, iterations=8), at=4)  # checkpoint_every=6: stopped with config.json and no checkpoint
    assert (out / "config.json").is_file() and _checkpoints(out) == []
    with pytest.raises(FileExistsError, match="pass resume=True"):
        train_gan(_cfg(out, iterations=8))
    with pytest.raises(ResumeError, match="lr_g: saved 0.0002 vs now 0.001"):  # still checked first
        train_gan(_cfg(out, iterations=8, resume=True, lr_g=1e-3))
    with pytest.warns(
        UserWarning, match="no checkpoint yet .*nothing was lost: training starts again from iteration 0"
    ):
        train_gan(_cfg(out, iterations=8, resume=True))
    assert (out / "losses.csv").read_text() == (direct / "losses.csv").read_text()
    assert len((out / "losses.csv").read_text().splitlines()) == 9  # header + 8 rows, none twice
    assert _checkpoints(out) == [6, 8]
    _assert_same_generator(direct / "generator.pt", out / "generator.pt")


@pytest.mark.parametrize("before", ["missing", "empty", "temp files only"])
def test_resume_of_a_folder_that_holds_no_run_yet_starts_it_fresh(before, tmp_path, capsys):
    """Killed before config.json (imports, data): --resume starts the run, says so in one line, and ends
    where a plain run ends; our temporary files are removed, a user's file is refused as before."""
    direct = train_gan(_cfg(tmp_path / "direct", iterations=6))
    out = tmp_path / "run"
    if before != "missing":
        (out / "checkpoints").mkdir(parents=True)
    if before == "temp files only":
        for name in (".config.json.a1b2c3d4.tmp.json", "checkpoints/.ckpt_00000006.pt.zzzzzzzz.tmp.pt"):
            (out / name).write_bytes(b"partial")
    argv = ["train", "--out", str(out), "--resume", "--iterations", "6", "--checkpoint-every", "6"]
    for key, value in {**TINY, "conditional": True, "n_saved": 10, "sample_every": 10, "seed": 5}.items():
        if key == "conditional":
            argv += ["--conditional"]
        elif key != "progress":
            argv += ["--" + key.replace("_", "-"), str(value)]
    assert main([*argv, "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err == f"medgan-aug train: warning: --resume: {out} holds no run yet; starting it fresh\n"
    assert (out / "losses.csv").read_text() == (direct / "losses.csv").read_text()
    _assert_same_generator(direct / "generator.pt", out / "generator.pt")
    assert [p.name for p in out.rglob("*") if ".tmp" in p.name] == []
    with pytest.warns(UserWarning, match="holds no run yet; starting it fresh"):
        train_gan(_cfg(tmp_path / "api", iterations=1, resume=True))
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("mine")
    assert main([*argv[:2], str(tmp_path / "user"), *argv[3:], "--no-progress"]) == 1
    assert "notes.txt" in capsys.readouterr().err and (tmp_path / "user" / "notes.txt").read_text() == "mine"


# --------------------------------------------------------------------------------------- extending a run


def test_extending_a_finished_run_equals_training_to_the_new_total(direct40, tmp_path):
    out = tmp_path / "run"
    train_gan(_cfg(out, iterations=20))
    assert _checkpoints(out) == [6, 12, 18, 20]  # 20: the end checkpoint, off the period
    with pytest.warns(UserWarning, match="continues from 20 to 40 iterations; .* now generator_00000020.pt"):
        train_gan(_cfg(out, iterations=40, resume=True))

    _assert_same_generator(direct40 / "generator.pt", out / "generator.pt")
    assert (out / "losses.csv").read_text() == (direct40 / "losses.csv").read_text()
    rows = list(csv.DictReader(open(out / "losses.csv")))
    assert [int(r["iteration"]) for r in rows] == list(range(1, 41))
    assert _checkpoints(out) == _checkpoints(direct40) == [6, 12, 18, 24, 30, 36, 40]  # 20 dropped at 24
    a, b = (
        load_checkpoint(out / "checkpoints/ckpt_00000040.pt"),
        load_checkpoint(direct40 / "checkpoints/ckpt_00000040.pt"),
    )
    for key in ("generator", "discriminator", "generator_ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    assert torch.equal(a["noise_rng"], b["noise_rng"]) and a["epoch"] == b["epoch"] == 10

    _, meta = load_generator(out / "generator.pt")
    _, old_meta = load_generator(out / "generator_00000020.pt")  # the first session's product, kept
    assert (meta["iterations"], old_meta["iterations"]) == (40, 20)
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["iterations"] == 40
    assert record["training_seconds"] == meta["training_seconds"] > old_meta["training_seconds"] > 0


def test_extension_killed_midway_resumes_to_the_same_end(direct40, tmp_path):
    out = tmp_path / "run"
    train_gan(_cfg(out, iterations=20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(_cfg(out, iterations=40, resume=True), handlers=[StopAt(27)])
    assert not (out / "generator.pt").exists()  # a generator.pt always belongs to config.json's total
    assert _checkpoints(out) == [6, 12, 18, 24]  # the old end checkpoint went when 24 was saved
    train_gan(_cfg(out, iterations=40, resume=True))
    _assert_same_generator(direct40 / "generator.pt", out / "generator.pt")
    assert (out / "losses.csv").read_text() == (direct40 / "losses.csv").read_text()


def test_decaying_schedule_refuses_extension_with_the_command_that_works(tmp_path, capsys):
    out = tmp_path / "run"
    train_gan(_cfg(out, iterations=12, lr_schedule="linear"))
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(ResumeError) as info:
        train_gan(_cfg(out, iterations=24, lr_schedule="linear", resume=True))
    message = str(info.value)
    assert "from 12 to 24 iterations" in message and "'linear' learning-rate schedule decays" in message
    assert "--iterations 24, another --out and no --resume" in message and "--iterations 12" in message
    assert sorted(p.name for p in out.rglob("*")) == before  # nothing renamed or removed

    argv = ["train", "--sample", "nih1000", "--conditional", "--fraction", "0.1", "--base-channels", "8"]
    argv += ["--latent-dim", "16", "--batch-size", "16", "--n-samples", "4", "--standing-stats-batches", "1"]
    argv += ["--checkpoint-every", "6", "--n-saved", "10", "--sample-every", "10", "--seed", "5"]
    argv += ["--lr-schedule", "linear", "--threads", "1", "--no-progress", "--out", str(out), "--resume"]
    assert main([*argv, "--iterations", "24"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--iterations 24, another --out and no --resume" in err

    with pytest.raises(ResumeError, match="is at iteration 12 .*--iterations 6 would end it before that"):
        train_gan(_cfg(out, iterations=6, lr_schedule="linear", resume=True))


def test_constant_schedule_may_not_end_before_its_latest_checkpoint(tmp_path):
    out = tmp_path / "run"
    _stopped(_cfg(out, iterations=40), at=14)
    with pytest.raises(ResumeError, match="is at iteration 12 .*Resume with --iterations 40"):
        train_gan(_cfg(out, iterations=10, resume=True))
    train_gan(_cfg(out, iterations=12, resume=True))  # ends right at the checkpoint: nothing more to train
    assert _load_meta(out)["iterations"] == 12


def _load_meta(run: Path) -> dict:
    return load_generator(run / "generator.pt")[1]


# ---------------------------------------------------------------------------------- orphaned temp files


def test_orphaned_temp_files_are_removed_and_nothing_else(tmp_path):
    out = tmp_path / "run"
    _stopped(_cfg(out), at=8)
    orphans = [
        "checkpoints/.ckpt_00000012.pt.k2j4_x9q.tmp.pt",  # killed inside a checkpoint save
        "samples/.iter_00000010.png.abcdefgh.tmp.png",
        ".losses.csv.0a1b2c3d.tmp.csv",
        ".config.json.zzzzzzzz.tmp.json",
        ".generator.pt.q1w2e3r4.tmp.pt",
    ]
    kept = [
        "notes.tmp",
        ".my.tmp",
        ".mydata.csv.abcdefgh.tmp.csv",  # a temp name, but of a file a run does not write
        "checkpoints/.ckpt_00000012.pt.short.tmp.pt",  # not mkstemp's 8 random characters
        "checkpoints/keep.tmp.pt",
        "samples/.iter_00000010.png.abcdefgh.tmp.png.bak",
        "extra/.losses.csv.0a1b2c3d.tmp.csv",  # in a folder a run does not write
    ]
    for name in orphans + kept:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"partial")
    (out / ".config.json.dddddddd.tmp.json.d").mkdir()  # a folder: never removed
    train_gan(_cfg(out, resume=True))
    assert [name for name in orphans if (out / name).exists()] == []
    assert [name for name in kept if not (out / name).is_file()] == []
    assert (out / ".config.json.dddddddd.tmp.json.d").is_dir()
    assert (out / "generator.pt").is_file()


# ------------------------------------------------------------------------------------- training seconds


def test_training_seconds_add_up_over_sessions(tmp_path):
    out = tmp_path / "run"
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(_cfg(out), handlers=[StopAt(15), _Slow(0.05)])  # 12 of 15 iterations reach checkpoint 12
    first_wall = time.perf_counter() - started
    at12 = load_checkpoint(out / "checkpoints/ckpt_00000012.pt")["training_seconds"]
    assert 12 * 0.05 <= at12 <= first_wall
    started = time.perf_counter()
    train_gan(_cfg(out, resume=True), handlers=[_Slow(0.05)])  # iterations 13..20
    second_wall = time.perf_counter() - started
    total = recorded_training_seconds(out)
    assert total == _load_meta(out)["training_seconds"]
    assert at12 + 8 * 0.05 <= total <= at12 + second_wall  # session 1 up to its checkpoint + session 2
    at20 = load_checkpoint(out / "checkpoints/ckpt_00000020.pt")["training_seconds"]
    assert at12 < at20 <= total

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(_cfg(out, resume=True))  # already finished: re-exports, adds no time
    assert recorded_training_seconds(out) == total
    assert recorded_training_seconds(tmp_path / "nothing") is None


# ------------------------------------------------------------------------------------------- kill loop

KILL_ARGS = dict(TINY, iterations=60, checkpoint_every=3, n_saved=3, sample_every=10, seed=11)

# A fresh interpreter spends 6-10 s here importing torch and MONAI, so the killed sessions are forked from
# one process that has imported the CLI: each is a new process running ``medgan_aug.cli.main(["train",
# ...])`` (what ``python -m medgan_aug train`` runs) and dies by SIGKILL like any other. It reads
# "start <status file> <json argv>" (answers the child's pid) and "wait <pid>" (answers its wait status).
# A child that ends on its own writes its exit code to the status file.
FORK_SERVER = """
import json, os, sys
import torchvision.utils
from medgan_aug.cli import build_parser, main
build_parser()  # imports every subcommand (MONAI, torch) once, before the forks
for line in sys.stdin:
    command, rest = line.rstrip("\\n").split(" ", 1)
    if command == "start":
        status, argv = rest.split(" ", 1)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                log = os.open(status + ".log", os.O_WRONLY | os.O_CREAT, 0o644)
                os.dup2(log, 1)
                os.dup2(log, 2)
                code = main(json.loads(argv))
            finally:
                with open(status, "w") as fh:
                    fh.write(str(code))
                os._exit(code)
        print(pid, flush=True)
    else:
        print(os.waitpid(int(rest), 0)[1], flush=True)
"""


def _argv(out: Path, resume: bool) -> list[str]:
    argv = ["train", "--out", str(out)]
    for key, value in KILL_ARGS.items():
        argv += ["--no-progress"] if key == "progress" else ["--" + key.replace("_", "-"), str(value)]
    return argv + (["--resume"] if resume else [])


def _wait_for(ended: Path, predicate, timeout: float = 60.0) -> bool:
    """Poll ``predicate`` until it holds (True) or the session has ended on its own (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if ended.exists():
            return False
        time.sleep(0.002)
    raise AssertionError("the training session neither progressed nor ended")


def _rows(path: Path) -> int:
    try:
        return len(path.read_text().splitlines()) - 1
    except OSError:
        return -1


@pytest.mark.slow
def test_sigkill_ten_times_then_resume_equals_an_uninterrupted_run(tmp_path):
    """SIGKILL ``medgan-aug train --resume`` first before its config.json exists, then 10 times at seeded
    random points (during start-up, right after a checkpoint appears, while a checkpoint's temporary file is
    being written, mid-iteration), resume each time, finish with ``python -m medgan_aug train --resume``: the
    end equals an uninterrupted run byte for byte, and the temporary files of the killed writes are gone."""
    reference = train_gan(GANConfig(out=str(tmp_path / "reference"), **KILL_ARGS))
    out, ckpts = tmp_path / "killed", tmp_path / "killed" / "checkpoints"
    rng = random.Random(20240607)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-c", FORK_SERVER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    modes, seconds = [], []
    try:
        for kill in range(11):  # every session passes --resume, the first too: the documented retry loop
            latest = max(_checkpoints(out), default=0)
            ended = tmp_path / f"session_{kill}.status"
            server.stdin.write(f"start {ended} {json.dumps(_argv(out, resume=True))}\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            modes_now = ["startup", "after_checkpoint", "during_write", "mid_iteration"]
            mode = "before_config" if kill == 0 else rng.choice(modes_now)
            if mode == "before_config":  # at once: the folder is missing (or empty), no config.json yet
                alive = not ended.exists()
            elif mode == "startup":
                time.sleep(rng.uniform(0.0, 0.3))
                alive = not ended.exists()
            elif mode == "after_checkpoint":
                alive = _wait_for(ended, lambda n=latest: max(_checkpoints(out), default=0) > n)
            elif mode == "during_write":  # a temporary checkpoint file of this session
                old = set(os.listdir(ckpts)) if ckpts.is_dir() else set()
                alive = _wait_for(
                    ended,
                    lambda old=old: ckpts.is_dir() and any(".tmp" in p for p in set(os.listdir(ckpts)) - old),
                )
            else:
                rows = max(_rows(out / "losses.csv"), 0) + rng.randint(1, 5)
                alive = _wait_for(ended, lambda n=rows: _rows(out / "losses.csv") >= n)
            os.kill(pid, signal.SIGKILL)
            server.stdin.write(f"wait {pid}\n")
            server.stdin.flush()
            status = int(server.stdout.readline())
            if mode == "before_config":
                assert alive and not (out / "config.json").exists(), "the first kill came after config.json"
            log = Path(f"{ended}.log").read_text() if Path(f"{ended}.log").exists() else ""
            assert status == signal.SIGKILL or (status == 0 and ended.read_text() == "0"), (status, log)
            modes.append((mode, alive, max(_checkpoints(out), default=0)))
            if _checkpoints(out):
                seconds.append(load_checkpoint(CheckpointManager(ckpts).list()[-1][1])["training_seconds"])
    finally:
        server.stdin.close()
        server.wait(timeout=60)
    final = subprocess.run(
        [sys.executable, "-m", "medgan_aug", *_argv(out, resume=True)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert final.returncode == 0, final.stderr

    assert sum(alive for mode, alive, _ in modes if mode not in ("startup", "before_config")) >= 5, (
        modes
    )  # kills landed in training
    n = KILL_ARGS["iterations"]  # 60: room for ten kills, even where start-up kills let a session run ahead
    assert 0 < modes[-1][2] < n, modes  # the last kill left work for the final resume
    assert (out / "losses.csv").read_bytes() == (reference / "losses.csv").read_bytes()
    _assert_same_generator(reference / "generator.pt", out / "generator.pt")
    assert _checkpoints(out) == _checkpoints(reference) == [n - 6, n - 3, n]
    assert [p.name for p in out.rglob("*") if ".tmp" in p.name] == []  # orphans of killed writes removed
    assert seconds == sorted(seconds) and recorded_training_seconds(out) >= max(seconds, default=0.0)
