"""The generator's pool (``GANConfig.pool``, ``medgan-aug train --pool``): labelled subset, train split or a
user's file of unlabelled X-rays (:mod:`medgan_aug.data.pools`).

On the real NIH1000 28 px files (the shared one and the packaged sample): no val or test image in any pool
(checked by content), ``train`` holds every training image with exactly the subset labelled, bad pool files
are one line with nothing written, labels in a pool file warn, short DCGAN and ddpm runs on the pool record
it, resume refuses a changed pool, and a study's pool changes its GAN key and fills a ``pool`` column.
"""

from __future__ import annotations

import csv
import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_helpers import tiny_gan_config
from ignite.engine import Events

from medgan_aug.apps.study.config import StudyConfig, gan_key
from medgan_aug.apps.study.summary import pool_of, write_results_csv
from medgan_aug.apps.train import GANConfig, build_gan_trainer, load_gan_subset, train_gan
from medgan_aug.cli import main
from medgan_aug.data.batches import SeededBatches
from medgan_aug.data.medmnist import MedMNISTDataset, load_medmnist_npz
from medgan_aug.data.pools import PoolBatches, load_generator_pool
from medgan_aug.data.stratify import low_data_indices
from medgan_aug.engines.diffusion_trainer import DiffusionTrainer
from medgan_aug.networks.diffusion import DiffusionGenerator
from medgan_aug.utils.errors import MedMNISTFileError, ResumeError


def _tiny(out: Path, **kw) -> GANConfig:
    """The tiny run of ``engine_helpers`` with a checkpoint and a sample grid every 2 iterations, seed 1,
    unconditional unless ``kw`` says otherwise."""
    return tiny_gan_config(
        out, **{"conditional": False, "checkpoint_every": 2, "sample_every": 2, "seed": 1, **kw}
    )


def _keys(images: np.ndarray) -> set[bytes]:
    return {hashlib.sha1(np.ascontiguousarray(im).tobytes()).digest() for im in images}


def _held_out(path: Path) -> set[bytes]:
    return _keys(load_medmnist_npz(path, "val")[0]) | _keys(load_medmnist_npz(path, "test")[0])


def _train_and_subset(path: Path, fraction: float = 0.1) -> tuple[MedMNISTDataset, np.ndarray]:
    train = MedMNISTDataset(split="train", path=path)
    return train, low_data_indices(train.labels, fraction=fraction, seed=0)


@pytest.fixture(params=["shared", "packaged"])
def nih28(request, chest28_path, chest28_shared_path) -> Path:
    return chest28_shared_path if request.param == "shared" else chest28_path


def _write_images(path: Path, images: np.ndarray, **more: np.ndarray) -> Path:
    np.savez(path, images=images, **more)
    return path


# ------------------------------------------------------------------------------------------ the pools


def test_no_val_or_test_image_enters_any_pool(nih28, tmp_path):
    train, idx = _train_and_subset(nih28)
    held_out = _held_out(nih28)
    assert len(held_out) == 76 + 233  # every val/test image is distinct: the check below can see each one
    own = _write_images(
        tmp_path / "own.npz", np.random.default_rng(0).integers(0, 256, (30, 28, 28), np.uint8)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the MedMNIST file's labels are ignored (tested below)
        pools = {
            name: load_generator_pool(name, train, idx)
            for name in ("labelled", "train", str(nih28), str(own))
        }
    for name, pool in pools.items():
        assert not _keys(pool.images) & held_out, name
    # the MedMNIST file as a pool: its train split only, the labelled subset once (its duplicates dropped)
    as_file = pools[str(nih28)]
    assert as_file.info["num_images"] == 691 and as_file.info["dropped_duplicates"] == len(idx)
    assert _keys(as_file.images) == _keys(train.images)
    assert pools[str(own)].info["num_images"] == len(idx) + 30


def test_a_pool_file_with_a_test_image_is_refused(chest28_path, tmp_path):
    train, idx = _train_and_subset(chest28_path)
    test_images, _ = load_medmnist_npz(chest28_path, "test")
    mixed = np.concatenate([train.images[:5], test_images[7:8]])
    path = _write_images(tmp_path / "leaky.npz", mixed)
    with pytest.raises(
        MedMNISTFileError, match=r"leaky\.npz: 1 of its images are val/test images .*row 5, a test"
    ):
        load_generator_pool(str(path), train, idx)


def test_pool_train_holds_every_training_image_and_marks_exactly_the_subset(nih28):
    train, idx = _train_and_subset(nih28, fraction=0.25)
    pool = load_generator_pool("train", train, idx)
    np.testing.assert_array_equal(pool.images, train.images)
    assert pool.labelled.sum() == len(idx) == 173 and set(np.flatnonzero(pool.labelled)) == set(idx)
    targets = pool.targets(train.targets[idx])
    np.testing.assert_array_equal(targets[idx], train.targets[idx])
    assert not targets[~pool.labelled].any()  # unlabelled rows carry no label
    np.testing.assert_array_equal(
        pool.images[pool.labelled][np.argsort(pool.subset_rows[pool.labelled])], train.images[idx]
    )
    labelled = load_generator_pool("labelled", train, idx)
    np.testing.assert_array_equal(labelled.images, train.images[idx])
    assert labelled.labelled.all() and labelled.info["num_images"] == 173


def test_run_subset_trains_on_the_pool_and_keeps_the_labelled_label_pool(chest28_path):
    subset = load_gan_subset(GANConfig(path=str(chest28_path), pool="train", fraction=0.1, out="unused"))
    assert subset.pool_images.shape == (691, 1, 28, 28) and int(subset.pool_labelled.sum()) == 69
    assert subset.targets.shape == (69, 14) and len(subset.labels) == 69  # generated labels: the subset's
    assert subset.pool_images.min() >= -1 and subset.pool_images.max() <= 1
    default = load_gan_subset(GANConfig(path=str(chest28_path), fraction=0.1, out="unused"))
    assert default.pool_images is default.images and not default.unlabelled_pool


# ------------------------------------------------------------------------------------------ bad files


def _bad_pool_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Each kind of bad pool file, with what its one line must say."""
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip archive at all")
    (tmp_path / "folder.npz").mkdir()
    images = np.zeros((4, 28, 28), np.uint8)
    np.savez(tmp_path / "noimages.npz", pictures=images)
    return {
        "missing": (tmp_path / "missing.npz", "does not exist"),
        "no images": (tmp_path / "noimages.npz", "has no 'images' array"),
        "folder": (tmp_path / "folder.npz", "is a folder"),
        "unreadable": (garbage, "not a readable .npz"),
        "wrong size": (
            _write_images(tmp_path / "size.npz", np.zeros((4, 64, 64), np.uint8)),
            "are 64x64 but the run's size is 28",
        ),
        "wrong dtype": (
            _write_images(tmp_path / "dtype.npz", images.astype(np.float32)),
            "dtype float32, expected uint8",
        ),
        "empty": (_write_images(tmp_path / "empty.npz", images[:0]), "is empty"),
        "wrong shape": (_write_images(tmp_path / "shape.npz", images[:, None]), "expected (N, H, W)"),
    }


def test_each_bad_pool_file_is_one_line_and_nothing_is_written(chest28_path, tmp_path, capsys):
    for kind, (path, says) in _bad_pool_files(tmp_path).items():
        out = tmp_path / f"run_{kind.replace(' ', '_')}"
        code = main(
            [
                "train",
                "--path",
                str(chest28_path),
                "--pool",
                str(path),
                "--out",
                str(out),
                "--iterations",
                "2",
            ]
        )
        err = capsys.readouterr().err
        assert code == 1, (kind, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err, (kind, err)
        assert err.startswith("medgan-aug train: error: pool file ") and str(path) in err and says in err, (
            kind,
            err,
        )
        assert not out.exists(), kind  # nothing written, not even the run folder


def test_labels_in_a_pool_file_are_ignored_with_one_warning(chest28_path, tmp_path):
    train, idx = _train_and_subset(chest28_path)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (12, 28, 28), np.uint8)
    path = _write_images(tmp_path / "labelled_pool.npz", images, labels=np.ones((12, 14), np.uint8))
    with pytest.warns(UserWarning) as caught:
        pool = load_generator_pool(str(path), train, idx)
    lines = [str(w.message) for w in caught]
    assert (
        len(lines) == 1
        and "labelled_pool.npz holds labels: they are ignored" in lines[0]
        and "\n" not in lines[0]
    )
    assert (
        pool.labelled.sum() == len(idx) and not pool.labelled[len(idx) :].any()
    )  # the file's rows: unlabelled
    assert not pool.targets(train.targets[idx])[len(idx) :].any()
    plain = _write_images(tmp_path / "plain.npz", images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no labels: no warning
        load_generator_pool(str(plain), train, idx)


# ------------------------------------------------------------------------------------------ training


def test_unconditional_dcgan_on_pool_train_records_the_pool(tmp_path):
    run = train_gan(_tiny(tmp_path / "gan", pool="train", iterations=3))
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["pool"] == "train"
    pool = record["pool"]
    assert (pool["num_images"], pool["num_labelled"], pool["num_unlabelled"]) == (691, 69, 622)
    assert len(pool["images_sha256"]) == 64
    assert (
        record["epoch_length"] == 691 // 16
    )  # batches drawn from the whole pool, not the 69 labelled images
    assert (run / "generator.pt").is_file()


def test_default_pool_keeps_the_run_record_of_runs_before_pools(tmp_path):
    run = train_gan(_tiny(tmp_path / "gan", iterations=2))
    record = json.loads((run / "config.json").read_text())
    assert "pool" not in record and "pool" not in record["config"]
    assert record["epoch_length"] == 69 // 16


def test_conditional_ddpm_learns_unlabelled_pool_images_with_the_null_context(tmp_path):
    config = _tiny(
        tmp_path / "ddpm",
        pool="train",
        model="ddpm",
        conditional=True,
        sampling_steps=2,
        label_dropout=0.1,
        iterations=3,
        base_channels=4,
        batch_size=32,
    )
    subset = load_gan_subset(config)
    from medgan_aug.apps.train_diffusion import build_diffusion_trainer

    trainer = build_diffusion_trainer(config, subset)
    assert isinstance(trainer.batches, PoolBatches)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    conditioning = trainer.generator.conditioning

    def spy(labels, drop):
        seen.append((labels.clone(), drop.clone()))
        return conditioning(labels, drop)

    trainer.generator.conditioning = spy
    trainer.run()
    assert len(seen) == 3
    for i, (labels, drop) in enumerate(seen):
        rows = torch.from_numpy(trainer.batches.indices(i))
        labelled = subset.pool_labelled[rows]
        assert drop[~labelled].all()  # every unlabelled image: the null context
        assert (~drop[labelled]).any()  # labelled images keep their labels (all but the label-dropout share)
        torch.testing.assert_close(labels[labelled], subset.pool_targets[rows][labelled])
    # the whole run: config.json and the generator file's label pool (the labelled subset's labels only)
    run = train_gan(config)
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["pool"] == "train" and record["pool"]["num_labelled"] == 69
    meta = torch.load(run / "generator.pt", weights_only=True)["meta"]
    assert meta["train_labels"].shape == (69, 14) and meta["pool"] == "train" and meta["pool_images"] == 691


def test_an_all_labelled_mask_trains_the_diffusion_model_as_before():
    """Masks change only unlabelled rows: an all-True mask gives the losses of plain ``SeededBatches``."""
    images = torch.rand(8, 1, 28, 28) * 2 - 1
    labels = torch.randint(0, 2, (8, 2)).float()

    def losses(batches) -> list[float]:
        torch.manual_seed(0)
        generator = DiffusionGenerator(28, 2, base_channels=4, num_inference_steps=2)
        with torch.no_grad():  # MONAI zero-initialises the projections that read the context: perturb them
            for p in generator.parameters():
                p.add_(0.2 * torch.randn(p.shape))
        trainer = DiffusionTrainer(
            "cpu",
            generator,
            torch.optim.Adam(generator.parameters()),
            batches,
            3,
            label_dropout=0.5,
            noise_seed=4,
        )
        seen: list[float] = []
        trainer.add_event_handler(
            Events.ITERATION_COMPLETED, lambda engine: seen.append(engine.state.output["loss"])
        )
        trainer.run()
        return seen

    masked = PoolBatches(images, labels, torch.ones(8, dtype=torch.bool), 4, 0)
    plain = losses(SeededBatches(images, labels, 4, 0))
    assert len(plain) == 3 and losses(masked) == plain
    half = PoolBatches(images, labels, torch.arange(8) < 4, 4, 0)
    assert losses(half) != plain  # the mask is used: unlabelled rows change the context


def test_conditional_dcgan_on_pool_train_passes_the_labelled_mask(tmp_path):
    config = _tiny(tmp_path / "gan", pool="train", conditional=True, iterations=2)
    subset = load_gan_subset(config)
    trainer = build_gan_trainer(config, subset)
    assert int(trainer.labelled.sum()) == 69 and len(trainer.labelled) == 691
    run = train_gan(config)
    assert json.loads((run / "config.json").read_text())["pool"]["num_unlabelled"] == 622


def test_resume_with_another_pool_is_refused(tmp_path):
    out = tmp_path / "gan"
    own = _write_images(
        tmp_path / "own.npz", np.random.default_rng(2).integers(0, 256, (20, 28, 28), np.uint8)
    )
    train_gan(_tiny(out, pool=str(own), iterations=2))
    for pool in ("train", "labelled"):
        with pytest.raises(ResumeError, match=rf"pool: saved '.*own\.npz' vs now '{pool}'"):
            train_gan(_tiny(out, pool=pool, iterations=2, resume=True))
    _write_images(
        own, np.random.default_rng(3).integers(0, 256, (20, 28, 28), np.uint8)
    )  # same path, new images
    with pytest.raises(ResumeError, match="generator's pool .* differs"):
        train_gan(_tiny(out, pool=str(own), iterations=2, resume=True))
    moved = own.rename(tmp_path / "moved.npz")
    _write_images(
        moved, np.random.default_rng(2).integers(0, 256, (20, 28, 28), np.uint8)
    )  # the original images
    train_gan(_tiny(out, pool=str(moved), iterations=2, resume=True))


def test_bad_pool_settings_are_refused_by_the_config():
    for bad in ("", "   ", 3, None):
        with pytest.raises(ValueError, match="GANConfig.pool must be"):
            GANConfig(pool=bad, out="unused")


# ------------------------------------------------------------------------------------------ the study


def _study(chest28_path: Path, **gan) -> StudyConfig:
    return StudyConfig(
        data={"path": str(chest28_path), "flag": "chestmnist"},
        fractions=[0.25],
        seeds=[0],
        gan={"iterations": 2, **gan},
    )


def test_study_pool_is_part_of_the_gan_key(chest28_path, tmp_path):
    base = gan_key(_study(chest28_path), 0.25, 0)
    assert gan_key(_study(chest28_path, pool="labelled"), 0.25, 0) == base  # the default keeps old keys
    on_train = gan_key(_study(chest28_path, pool="train"), 0.25, 0)
    own = _write_images(tmp_path / "own.npz", np.zeros((3, 28, 28), np.uint8))
    on_file = gan_key(_study(chest28_path, pool=str(own)), 0.25, 0)
    assert len({base, on_train, on_file}) == 3
    (tmp_path / "elsewhere").mkdir()
    moved = own.rename(tmp_path / "elsewhere" / "own.npz")
    assert gan_key(_study(chest28_path, pool=str(moved)), 0.25, 0) == on_file  # name and MD5, not the folder
    _write_images(moved, np.ones((3, 28, 28), np.uint8))
    assert gan_key(_study(chest28_path, pool=str(moved)), 0.25, 0) != on_file
    with pytest.raises(ValueError, match="gan.pool: pool file .*nowhere.npz does not exist"):
        _study(chest28_path, pool=str(tmp_path / "nowhere.npz"))


def _record(condition: str, **more) -> dict:
    uses_gan = "synthetic" in condition
    return {
        "key": condition,
        "fraction": 0.25,
        "seed": 0,
        "condition": condition,
        "classifier": "small_cnn",
        "synthetic_ratio": 0.5 if uses_gan else 0.0,
        "gan_dir": "gans/abc" if uses_gan else None,
        "label_names": ["a"],
        "per_label_auc": {"a": 0.5},
        "skipped_labels": [],
        "auc": 0.5,
        "acc": 0.5,
        **more,
    }


def test_results_csv_has_a_pool_column_and_old_records_read_as_labelled(tmp_path):
    rows = [_record("real", pool=None), _record("real+synthetic@0.5", pool="train")]
    write_results_csv(rows, tmp_path / "results.csv")
    with open(tmp_path / "results.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    header = list(table[0])
    assert header[header.index("gan_dir") + 1] == "pool"
    assert [pool_of(r) for r in table] == [None, "train"]
    old = [_record("real"), _record("real+synthetic@0.5")]  # written before pools: no pool key, no column
    write_results_csv(old, tmp_path / "old.csv")
    with open(tmp_path / "old.csv", newline="") as fh:
        old_table = list(csv.DictReader(fh))
    assert "pool" not in old_table[0]
    assert [pool_of(r) for r in old_table] == [None, "labelled"]  # an absent column reads as labelled


def test_a_study_with_pool_train_trains_its_gan_on_the_pool_and_says_so(chest28_path, tmp_path):
    from medgan_aug.apps.study import load_study_config, run_study

    config = load_study_config("quick", path=str(chest28_path))
    config.fractions, config.conditions = [0.25], ["real", "real+synthetic@0.5"]
    config.gan = {**config.gan, "iterations": 4, "batch_size": 16, "base_channels": 8, "pool": "train"}
    config.classifier = {"iterations": 5, "batch_size": 32, "lr": 0.001}
    config.synthetic, config.bootstrap = {"num_samples": 64}, {"n_boot": 20}
    config.evaluation = {"enabled": False}
    out = run_study(config, tmp_path / "study", progress=False)
    with open(out / "results.csv", newline="") as fh:
        table = {row["condition"]: row for row in csv.DictReader(fh)}
    assert table["real+synthetic@0.5"]["pool"] == "train" and table["real"]["pool"] == ""
    gan_dir = out / table["real+synthetic@0.5"]["gan_dir"]
    assert gan_dir.name == gan_key(config, 0.25, 0)
    record = json.loads((gan_dir / "config.json").read_text())
    assert record["config"]["pool"] == "train" and record["pool"]["num_images"] == 691


@pytest.mark.slow
def test_report_audits_a_pool_run_against_every_image_its_generator_saw(tmp_path):
    """``report`` on a ``--pool train`` run: the memorization audit and ``n_gan_train`` cover the 691 images
    the generator trained on, not only the 69 labelled ones."""
    from medgan_aug.apps.report import write_report

    run = train_gan(_tiny(tmp_path / "gan", pool="train", iterations=3))
    metrics = write_report(
        run, num_samples=40, extractor_iterations=5, repeats=1, collage_count=4, progress=False
    )
    assert metrics["data"]["n_gan_train"] == 691 and metrics["data"]["n_real_train"] == 691
    labelled = train_gan(_tiny(tmp_path / "subset", iterations=3))
    assert write_report(labelled, num_samples=40, extractor_iterations=5, repeats=1, collage_count=4,
                        progress=False)["data"]["n_gan_train"] == 69  # fmt: skip
