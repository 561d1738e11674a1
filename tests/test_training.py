"""Tests for the GAN trainer (medgan_aug.apps.train), its checkpoints, DiffAugment and `medgan-aug train`.

Real-data runs use the shared nih1000 file with tiny networks (base_channels 16, batch 16, 10% subset =
69 images, 4 iterations per ignite epoch) so the file stays well under a minute on 2 cores.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from engine_helpers import StopAt, tiny_gan_config
from ignite.engine import Events

from medgan_aug.apps.train import GANConfig, train_gan
from medgan_aug.data.batches import SeededBatches
from medgan_aug.handlers.checkpoint import CheckpointManager, load_checkpoint
from medgan_aug.networks.dcgan import DCGANDiscriminator
from medgan_aug.networks.model_file import load_generator
from medgan_aug.transforms.diffaugment import DiffAugment
from medgan_aug.utils.atomic import current_umask
from medgan_aug.utils.errors import CorruptFileError, GANDivergenceError, OutputNotOursError, UnsafeFileError


def _cfg(path, out, **kw) -> GANConfig:
    base = dict(
        path=str(path),
        iterations=23,
        base_channels=16,
        checkpoint_every=5,
        n_saved=10,
        sample_every=10,
        n_samples=16,
        standing_stats_batches=2,
        lr_schedule="linear",
        seed=3,
    )
    base.update(kw)
    return tiny_gan_config(out, **base)


def _final_state(run_dir):
    ckpts = CheckpointManager(run_dir / "checkpoints").list()
    return load_checkpoint(ckpts[-1][1])


def _assert_same_training_state(a: dict, b: dict) -> None:
    assert a["iteration"] == b["iteration"]
    for key in ("generator", "discriminator", "generator_ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs"
    for key in ("g_optimizer", "d_optimizer"):
        for idx, st in a[key]["state"].items():
            for name, value in st.items():
                assert torch.equal(value, b[key]["state"][idx][name]), f"{key} state {idx}.{name} differs"
    assert torch.equal(a["noise_rng"], b["noise_rng"]) and torch.equal(
        a["augment"]["rng_state"], b["augment"]["rng_state"]
    )


@pytest.fixture(scope="module")
def reference_run(chest28_path, tmp_path_factory):
    """One uninterrupted run that several tests compare against."""
    out = tmp_path_factory.mktemp("ref") / "run"
    return train_gan(_cfg(chest28_path, out))


# ----------------------------------------------------------------------------- a real-data run


def test_short_real_run_writes_run_directory(reference_run):
    run = reference_run
    rows = list(csv.DictReader(open(run / "losses.csv")))
    assert [int(r["iteration"]) for r in rows] == list(range(1, 24))
    assert [int(r["epoch"]) for r in rows[:5]] == [1, 1, 1, 1, 2]  # 69 images // 16 = 4 iterations per epoch
    for r in rows:
        for key in ("loss_d", "loss_g", "d_real", "d_fake"):
            assert np.isfinite(float(r[key])), (r["iteration"], key)
    assert float(rows[0]["lr_g"]) == pytest.approx(2e-4) and float(rows[-1]["lr_g"]) < 2e-5  # linear decay
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "iter_00000010.png",
        "iter_00000020.png",
        "iter_00000023.png",
    ]
    assert [it for it, _ in CheckpointManager(run / "checkpoints").list()] == [5, 10, 15, 20, 23]

    record = json.loads((run / "config.json").read_text())
    assert record["config"]["fraction"] == 0.1 and record["config"]["subset_seed"] == 0
    assert record["subset"]["num_images"] == 69 and len(record["subset"]["indices"]) == 69
    assert len(record["subset"]["indices_sha256"]) == 64
    assert record["epoch_length"] == 4

    g, meta = load_generator(run / "generator.pt")
    assert (g.image_size, g.num_labels) == (28, 14)
    assert meta["train_labels"].shape == (69, 14) and meta["label_names"][0] == "atelectasis"
    assert meta["fraction"] == 0.1 and meta["subset_seed"] == 0 and meta["iterations"] == 23
    assert meta["flag"] == "chestmnist" and meta["image_size"] == 28
    with torch.no_grad():
        x = g(torch.randn(4, 100), meta["train_labels"][:4].float())
    assert x.shape == (4, 1, 28, 28) and torch.isfinite(x).all()


def test_seed_fixes_everything(chest28_path, tmp_path):
    def losses(name, seed):
        run = train_gan(
            _cfg(chest28_path, tmp_path / name, iterations=8, seed=seed, standing_stats_batches=0)
        )
        return (run / "losses.csv").read_text().splitlines()

    first = losses("a", 3)
    assert losses("b", 3) == first
    assert losses("c", 4)[1:] != first[1:]


# ----------------------------------------------------------------------------- exact resume


def test_resume_is_bit_identical(reference_run, chest28_path, tmp_path):
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(_cfg(chest28_path, out), handlers=[StopAt(13)])  # killed 3 iterations after checkpoint 10
    assert not (out / "generator.pt").exists()
    assert [it for it, _ in CheckpointManager(out / "checkpoints").list()][-1] == 10
    train_gan(_cfg(chest28_path, out, resume=True))  # resumes from 10: mid-epoch (10 % 4 = 2)
    _assert_same_training_state(_final_state(reference_run), _final_state(out))
    assert (out / "losses.csv").read_text() == (reference_run / "losses.csv").read_text()
    g_ref, _ = load_generator(reference_run / "generator.pt")
    g_res, _ = load_generator(out / "generator.pt")
    for (name, a), (_, b) in zip(g_ref.state_dict().items(), g_res.state_dict().items()):
        assert torch.equal(a, b), name


def test_corrupt_latest_checkpoint_falls_back_to_previous(reference_run, chest28_path, tmp_path):
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(_cfg(chest28_path, out), handlers=[StopAt(10)])
    latest = out / "checkpoints" / "ckpt_00000010.pt"
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 3])  # a kill in the middle of a (non-atomic) write
    with pytest.warns(UserWarning, match="ckpt_00000010.pt"):
        train_gan(_cfg(chest28_path, out, resume=True))  # continues from iteration 5
    _assert_same_training_state(_final_state(reference_run), _final_state(out))


def test_no_readable_checkpoint_is_a_clear_error(chest28_path, tmp_path):
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(_cfg(chest28_path, out, iterations=6), handlers=[StopAt(5)])
    (out / "checkpoints" / "ckpt_00000005.pt").write_bytes(b"")
    with (
        pytest.warns(UserWarning),
        pytest.raises(CorruptFileError, match="no readable checkpoint in .*checkpoints"),
    ):
        train_gan(_cfg(chest28_path, out, iterations=6, resume=True))


class _Payload:
    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_checkpoint_that_would_run_code_is_refused(chest28_path, tmp_path, writer):
    marker = tmp_path / "marker"
    _Payload.marker = str(marker)
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(_cfg(chest28_path, out, iterations=6, standing_stats_batches=0), handlers=[StopAt(5)])
    evil = out / "checkpoints" / "ckpt_00000099.pt"  # planted as the newest checkpoint of the run
    payload = {"format": "medgan_aug.gan_checkpoint", "version": 1, "iteration": _Payload()}
    if writer == "pickle":
        evil.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, evil)
    with pytest.raises(UnsafeFileError, match="ckpt_00000099.pt"):
        load_checkpoint(evil)
    with pytest.raises(UnsafeFileError, match="refusing to load checkpoint .*ckpt_00000099.pt"):
        train_gan(_cfg(chest28_path, out, iterations=6, standing_stats_batches=0, resume=True))
    assert not marker.exists()
    assert evil.exists()  # refused, not silently skipped or deleted


# ----------------------------------------------------------------------------- divergence


class _PoisonD:
    """Fill D's weights with NaN after iteration ``n``: iteration n + 1 must stop the run."""

    def __init__(self, n: int) -> None:
        self.n = n

    def attach(self, engine) -> None:
        def poison(e):
            with torch.no_grad():
                for p in e.discriminator.parameters():
                    p.fill_(float("nan"))

        engine.add_event_handler(Events.ITERATION_COMPLETED(once=self.n), poison)


def test_nan_loss_stops_with_iteration_and_keeps_last_good_checkpoint(chest28_path, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(GANDivergenceError, match="iteration 12"):
        train_gan(_cfg(chest28_path, out), handlers=[_PoisonD(11)])
    ckpts = CheckpointManager(out / "checkpoints").list()
    assert [it for it, _ in ckpts] == [5, 10]
    state = load_checkpoint(ckpts[-1][1])
    assert all(torch.isfinite(v).all() for v in state["discriminator"].values() if v.is_floating_point())
    assert not (out / "generator.pt").exists()
    rows = (out / "losses.csv").read_text().splitlines()
    assert rows[-1].startswith("11,")


def test_cli_train_exits_nonzero_on_divergence(chest28_path, tmp_path, monkeypatch, capsys):
    from medgan_aug.cli import main

    forward = DCGANDiscriminator.forward_with_aux  # every D call goes through it
    calls = {"n": 0}

    def nan_after_20_calls(self, x, labels=None):
        calls["n"] += 1
        out, aux = forward(self, x, labels)
        return (out * float("nan") if calls["n"] > 20 else out), aux

    monkeypatch.setattr(DCGANDiscriminator, "forward_with_aux", nan_after_20_calls)
    argv = (
        f"train --path {chest28_path} --conditional --fraction 0.1 --iterations 20 --batch-size 16 "
        f"--base-channels 16 --checkpoint-every 5 --out {tmp_path / 'cli'} --threads 1 --no-progress "
        "--standing-stats-batches 1 --n-samples 4"
    ).split()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "diverged at iteration 7" in err  # 3 D calls per iteration: call 21 is the G step of iteration 7
    assert [it for it, _ in CheckpointManager(tmp_path / "cli" / "checkpoints").list()] == [5]


# ----------------------------------------------------------------------------- options, errors, handlers


def test_loss_variants_stay_finite(chest28_path, tmp_path):
    with pytest.warns(UserWarning, match="capped at 69"):
        run = _loss_variants_run(chest28_path, tmp_path)
    rows = list(csv.DictReader(open(run / "losses.csv")))
    assert len(rows) == 6 and all(np.isfinite(float(r["loss_d"])) and float(r["r1"]) > 0 for r in rows)
    g, meta = load_generator(run / "generator.pt")
    assert g.num_labels == 0 and meta["conditional"] is False


def _loss_variants_run(chest28_path, tmp_path):
    return train_gan(
        _cfg(
            chest28_path,
            tmp_path / "h",
            iterations=6,
            loss="hinge",
            r1_gamma=1.0,
            d_steps=2,
            spectral_norm=True,
            lr_schedule="cosine",
            conditional=False,
            diffaugment="translation",
            batch_size=80,
        )
    )  # batch larger than the 69-image subset: capped at 69


def test_monai_and_ignite_handlers_attach(chest28_path, tmp_path):
    from monai.handlers import CheckpointSaver, StatsHandler

    seen = []
    saver_dir = tmp_path / "monai_ckpt"

    class _Saver:
        def attach(self, engine):
            CheckpointSaver(str(saver_dir), engine.checkpoint_objects(), save_final=True).attach(engine)
            StatsHandler(iteration_log=False, output_transform=lambda o: o["loss_g"]).attach(engine)
            engine.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append(e.get_stats()))

    train_gan(_cfg(chest28_path, tmp_path / "run", iterations=3), handlers=[_Saver()])
    assert len(seen) == 3 and seen[-1]["current_iteration"] == 3
    assert any(p.suffix == ".pt" for p in saver_dir.iterdir())


def test_existing_run_and_changed_resume_config_are_refused(reference_run, chest28_path, tmp_path):
    with pytest.raises(FileExistsError, match="resume"):
        train_gan(_cfg(chest28_path, reference_run))
    with pytest.raises(ValueError, match="lr_g"):
        train_gan(_cfg(chest28_path, reference_run, resume=True, lr_g=1e-3))
    foreign = tmp_path / "foreign"  # --resume on a folder with someone else's files: refused, as before
    foreign.mkdir()
    (foreign / "config.json").write_text('{"model": "mine"}')
    with pytest.raises(OutputNotOursError, match=r"holds no GAN run .*config\.json"):
        train_gan(_cfg(chest28_path, foreign, resume=True))
    assert (foreign / "config.json").read_text() == '{"model": "mine"}'


def test_user_files_in_out_are_never_replaced(chest28_path, tmp_path, capsys):
    """A non-empty --out that holds no run is refused by the name of its first file, with or without
    --resume, by the API and the CLI, before any data is read; every byte stays as it was."""
    from medgan_aug.cli import main

    out = tmp_path / "mine"
    (out / "samples").mkdir(parents=True)
    mine = {"losses.csv": b"epoch,my_loss\n1,0.5\n", "generator.pt": b"my own weights", "samples/a.png": b"x"}
    for name, data in mine.items():
        (out / name).write_bytes(data)
    for resume in (False, True):
        with pytest.raises(
            OutputNotOursError, match=r"holds files medgan_aug does not write there: generator\.pt"
        ):
            train_gan(_cfg(chest28_path, out, iterations=2, resume=resume))
    argv = ["train", "--path", "no_such.npz", "--out", str(out), "--threads", "1", "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "generator.pt" in err and str(out) in err and "no_such" not in err
    assert {name: (out / name).read_bytes() for name in mine} == mine
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == sorted([*mine, "samples"])
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    with pytest.raises(OutputNotOursError, match="is a file, not a folder"):
        train_gan(_cfg(chest28_path, a_file, iterations=2))


def test_batch_larger_than_the_subset_is_capped_with_a_warning(chest28_path, tmp_path, capsys):
    """69 images (10% of nih1000's 691) and batch 4096: each batch is the 69 images, recorded as such."""
    from medgan_aug.cli import main

    with pytest.warns(
        UserWarning, match="batch_size 4096 is larger than the 69 training images: capped at 69"
    ):
        run = train_gan(_cfg(chest28_path, tmp_path / "api", iterations=2, batch_size=4096))
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["batch_size"] == 69 and record["epoch_length"] == 1
    argv = f"train --path {chest28_path} --fraction 0.1 --iterations 2 --batch-size 500 --base-channels 8"
    argv += f" --n-samples 4 --standing-stats-batches 1 --threads 1 --no-progress --out {tmp_path / 'cli'}"
    assert main(argv.split()) == 0
    err = capsys.readouterr().err
    assert (
        err
        == "medgan-aug train: warning: batch_size 500 is larger than the 69 training images: capped at 69\n"
    )
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["config"]["batch_size"] == 69


@pytest.mark.parametrize(
    "field,value",
    [
        ("fraction", 0.0),
        ("size", 32),
        ("iterations", 0),
        ("loss", "wgan"),
        ("lr_schedule", "step"),
        ("ema_decay", 1.0),
        ("diffaugment", "rotate"),
        ("batch_size", True),
        ("device", "tpu"),
    ],
)
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field if field != "diffaugment" else "rotate"):
        GANConfig(**{field: value})


def test_seeded_batches_order():
    images = torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1)
    batches = SeededBatches(images, None, batch_size=4, seed=0)
    assert len(batches) == 2
    stream = np.concatenate([batches.indices(i) for i in range(5)])  # 20 positions = 2 full passes
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:]) == list(range(10))
    assert np.array_equal(SeededBatches(images, None, 4, 0).indices(3), batches.indices(3))
    assert not np.array_equal(SeededBatches(images, None, 4, 1).indices(0), batches.indices(0))
    big = SeededBatches(images, None, batch_size=25, seed=0)
    assert len(big) == 1 and len(big.indices(0)) == 25


# ----------------------------------------------------------------------------- DiffAugment


def test_diffaugment_reproducible_resumable_and_differentiable():
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    a, b = DiffAugment(seed=5), DiffAugment(seed=5)
    assert torch.equal(a(x), b(x))
    state = a.state_dict()
    first = a(x)
    b.load_state_dict(state)
    assert torch.equal(b(x), first)
    assert not torch.equal(a(x), first)  # the stream moves on
    leaf = x.clone().requires_grad_(True)
    DiffAugment(seed=0)(leaf).sum().backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0
    assert torch.equal(DiffAugment("", seed=0)(x), x)


def test_diffaugment_operations():
    x = torch.ones(4, 1, 8, 8)
    cut = DiffAugment("cutout", seed=0)(x)
    frac = (cut == 0).float().mean((1, 2, 3))  # a 4x4 square (half the side), clipped at the border
    assert torch.all(frac > 0) and torch.all(frac <= 16 / 64) and set(cut.unique().tolist()) == {0.0, 1.0}
    moved = DiffAugment("translation", seed=1)(x)
    assert moved.shape == x.shape and set(moved.unique().tolist()) <= {0.0, 1.0}
    bright = DiffAugment("brightness", seed=2)(x)
    assert torch.all((bright - 1).abs() <= 0.5)
    with pytest.raises(ValueError, match="rotate"):
        DiffAugment("rotate")
    with pytest.raises(ValueError, match="B, C, H, W"):
        DiffAugment()(torch.ones(8, 8))


def test_no_temporary_files_left(reference_run):
    leftovers = [p for p in reference_run.rglob("*") if ".tmp" in p.name]
    assert leftovers == []
    assert os.path.getsize(reference_run / "generator.pt") < 2_000_000


def test_every_file_of_a_run_follows_the_umask(reference_run):
    """generator.pt, checkpoints, config.json, losses.csv, sample PNGs: the modes open() gives under the umask."""
    files = sorted(p.relative_to(reference_run).as_posix() for p in reference_run.rglob("*") if p.is_file())
    expected = {"generator.pt", "config.json", "losses.csv", "checkpoints/ckpt_00000023.pt"}
    assert expected | {"samples/iter_00000010.png"} <= set(files)
    modes = {f: oct((reference_run / f).stat().st_mode & 0o777) for f in files}
    assert set(modes.values()) == {oct(0o666 & ~current_umask())}, modes


def test_moved_run_folder_resumes_and_another_data_file_is_refused(reference_run, chest28_path, tmp_path):
    """Where the folder and the file are may change between sessions; what the data is may not."""
    import shutil

    first = tmp_path / "first"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(_cfg(chest28_path, first), handlers=[StopAt(13)])
    moved = tmp_path / "elsewhere" / "run"
    shutil.move(str(first), str(moved))
    copy = tmp_path / "data" / "same.npz"  # the same bytes under another name: still the same data
    copy.parent.mkdir()
    shutil.copy(chest28_path, copy)
    train_gan(_cfg(copy, moved, resume=True))
    _assert_same_training_state(_final_state(reference_run), _final_state(moved))

    other = tmp_path / "data" / "other.npz"  # same layout and subset rows, different pixels
    with np.load(chest28_path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["train_images"] = 255 - arrays["train_images"]
    np.savez(other, **arrays)
    second = tmp_path / "second"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(_cfg(chest28_path, second), handlers=[StopAt(6)])
    with pytest.raises(ValueError, match=r"other.npz \(MD5 [0-9a-f]{32}\) is not the one the run"):
        train_gan(_cfg(other, second, resume=True))
