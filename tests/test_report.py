"""`medgan-aug report` on a short real-data GAN run: every file, valid images of the expected size."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medgan_aug.apps.report.figures import HEADER, grid_image, read_sample_tiles
from medgan_aug.apps.report.html import fmt
from medgan_aug.apps.report.report import (
    load_run_record,
    read_losses,
    resolve_real_file,
    run_data_source,
    write_report,
)
from medgan_aug.apps.train import GANConfig, train_gan
from medgan_aug.cli import main as cli_main
from medgan_aug.data import sample_path

SIZE, N_SAMPLES, SNAPSHOTS = 28, 16, 3  # 16 fixed-noise samples -> 4x4 sample grids, 3 of them


@pytest.fixture(scope="module")
def run(chest28_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    config = GANConfig(
        path=str(chest28_path),
        conditional=True,
        iterations=30,
        batch_size=32,
        base_channels=8,
        latent_dim=16,
        sample_every=10,
        checkpoint_every=30,
        n_samples=N_SAMPLES,
        standing_stats_batches=2,
        seed=0,
        out=str(out),
        progress=False,
    )
    return train_gan(config)


@pytest.fixture(scope="module")
def report(run):
    """``medgan-aug report`` on the tiny run (fits an extractor): the tests that take it are marked slow."""
    code = cli_main(
        [
            "report",
            "--run",
            str(run),
            "--num",
            "200",
            "--extractor-iterations",
            "20",
            "--repeats",
            "2",
            "--no-progress",
        ]
    )
    assert code == 0
    return json.loads((run / "metrics.json").read_text())


def _size(path):
    with Image.open(path) as im:
        im.verify()  # a valid, complete image file
    with Image.open(path) as im:
        return im.size, getattr(im, "n_frames", 1)


def _grid(n, nrow, scale, tile=SIZE):
    rows = -(-n // nrow)
    return (nrow * (tile + 1) + 1) * scale, (rows * (tile + 1) + 1) * scale


@pytest.mark.slow
def test_report_writes_every_file_with_expected_sizes(run, report):
    gw, gh = _grid(32, 8, 3)  # collage: 32 tiles per side, 8 per row, x3
    assert _size(run / "real_vs_synthetic.png") == ((2 * gw + 12, gh + HEADER), 1)
    assert _size(run / "progression.png") == ((130 + _grid(8, 8, 2)[0], SNAPSHOTS * _grid(8, 8, 2)[1]), 1)
    sample_grid = 4 * (SIZE + 1) + 1  # the trainer's 4x4 grid of 16 samples with 1 px padding
    assert _size(run / "progression.gif") == ((sample_grid, sample_grid + HEADER), SNAPSHOTS)
    assert _size(run / "losses.png") == ((900, 360), 1)
    assert _size(run / "per_finding.png") == ((130 + _grid(8, 8, 2)[0], _grid(15 * 8, 8, 2)[1]), 1)
    pw, ph = _grid(16, 8, 3)  # 8 pairs: two rows of 8, x3
    assert _size(run / "memorization_pairs.png") == ((pw, ph + 2 * HEADER), 1)
    assert _size(run / "memorization_hist.png") == ((600, 340), 1)
    assert (run / "progression.gif").stat().st_size < 1_000_000
    html = (run / "report.html").read_text()
    for name in report["files"].values():
        assert f'src="{name}"' in html  # relative paths: the folder is readable offline
    assert "not Inception FIDs" in html and '"base_channels": 8' in html  # the note and the run's config
    assert "http://" not in html and "https://" not in html


@pytest.mark.slow
def test_metrics_have_a_floor_beside_every_value(report, run):
    d = report["distances"]
    assert d["n"] == 200  # min(691 // 2 real halves, 200 generated, 309 held-out)
    for key in ("frechet_distance", "kid", "precision", "recall", "density", "coverage"):
        assert {"value", "floor", "value_std", "floor_std", "heldout"} <= set(d[key])
        assert all(np.isfinite(v) for v in d[key].values())
    # 30 iterations of a tiny GAN make noise: far from real data, far above the real-vs-real floor
    assert d["frechet_distance"]["value"] > 5 * d["frechet_distance"]["floor"]
    assert d["precision"]["value"] < d["precision"]["floor"]
    c = report["conditional_fidelity"]
    assert 0.0 <= c["auc"] <= 1.0 and len(c["auc_per_label"]) + len(c["skipped_labels"]) == 14
    assert 0.0 <= c["reference_real_heldout_auc"] <= 1.0
    for space in ("pixel", "feature"):
        m = report["memorization"][space]
        assert 0.0 <= m["share_flagged"] <= 1.0 and m["n_synthetic"] == 200 and m["n_heldout"] == 309
        assert m["heldout_share_flagged"] == pytest.approx(0.01, abs=0.01)
        assert len(m["closest"]) == 8
    assert report["memorization"]["pixel"]["n_exact_copies"] == 0
    assert report["data"] == {
        "real_file": report["data"]["real_file"],
        "flag": "chestmnist",
        "image_size": 28,
        "n_real_train": 691,
        "n_gan_train": 691,
        "n_heldout": 309,
        "heldout": "val + test",
    }
    assert report["extractor"]["fitted_now"] is True
    assert (run.parent / "extractors").is_dir()


@pytest.mark.slow
def test_headline_distances_are_anchored_on_held_out_patients_in_two_feature_spaces(report, run):
    block = report["heldout_anchored"]
    assert set(block["spaces"]) == {"extractor", "random_cnn"}  # no --inception here
    for name, space in block["spaces"].items():
        assert space["n"] == 200  # min(309 held-out, 200 generated, 691 train, each patient-disjoint half)
        assert space["floor_kind"] == "patient-disjoint training halves"  # NIH1000 has patient ids
        fd = space["frechet_distance"]
        assert space["ratio"] > 2, name  # 30 iterations of a tiny GAN: far from new patients' images
        assert space["ratio"] == pytest.approx(
            fd["synthetic"] / fd["train"], rel=0.5
        )  # mean of per-draw ratios
        assert fd["floor"] > 0 and space["precision"]["synthetic"] < space["precision"]["train"]
    assert block["headline"]["space"] == "extractor"
    assert block["headline"]["ratio"] == block["spaces"]["extractor"]["ratio"]
    html = (run / "report.html").read_text()
    assert "Distance to held-out patients (headline)" in html and "patient-disjoint training halves" in html
    assert f"<b>{fmt(block['headline']['ratio'], 3)}</b>" in html


@pytest.mark.slow
def test_extractor_val_and_test_auc_stand_beside_every_number_it_produces(report, run):
    ext = report["extractor"]
    assert ext["version"] == "v2" and ext["selection"]["split"] == "val"
    assert ext["selection"]["every"] == 25 and ext["max_iterations"] == 20
    assert (
        ext["selection"]["evaluations"] == 1 and ext["train_iterations"] == 20
    )  # 20 steps: scored once, at the end
    assert ext["val_auc"] == pytest.approx(ext["selection"]["best_score"], abs=1e-12)
    for key in ("train_auc", "val_auc", "test_auc", "heldout_auc"):
        assert 0.0 <= ext[key] <= 1.0, key
    assert (
        len(ext["val_auc_per_label"]) == 9 and len(ext["test_auc_per_label"]) == 13
    )  # findings with both classes
    note = {"extractor_version": "v2", "val_auc": ext["val_auc"], "test_auc": ext["test_auc"]}
    for block in (
        report["distances"],
        report["conditional_fidelity"],
        report["memorization"]["feature"],
        report["label_faithfulness"],
    ):
        assert block["instrument"] == note
    assert "instrument" not in report["memorization"]["pixel"]  # pixel distances need no extractor
    html = (run / "report.html").read_text()
    cell = f"v2: {ext['val_auc']:.3g} / {ext['test_auc']:.3g}"
    assert (
        html.count(cell) == 6 + 1 + 2 + 1
    )  # six distances, conditional AUC, two faithfulness rows, features
    assert f"val {ext['val_auc']:.3g}, test {ext['test_auc']:.3g}" in html


@pytest.mark.slow
def test_label_faithfulness_is_reported_per_finding(report, run):
    f = report["label_faithfulness"]
    assert f["n"] == 200 and len(f["per_label"]) == 14
    for name, entry in f["per_label"].items():
        assert -1.0 <= entry["shift"] <= 1.0 and 0.0 <= entry["auc"] <= 1.0, name
        assert entry["classifier_val_auc"] == report["extractor"]["val_auc_per_label"].get(name)
    assert f["mean_shift"] == pytest.approx(np.mean([e["shift"] for e in f["per_label"].values()]))
    assert f["mean_auc"] == pytest.approx(np.mean([e["auc"] for e in f["per_label"].values()]))
    real = f["real_heldout"]  # the same classifier on held-out real images: with minus without the finding
    assert real["n"] == 76 + 233  # NIH1000's val + test split
    shifts = {k: e["real_heldout_shift"] for k, e in f["per_label"].items()}
    assert sorted(k for k, v in shifts.items() if v is None) == sorted(real["skipped"])
    assert real["mean_shift"] == pytest.approx(np.mean([v for v in shifts.values() if v is not None]))
    assert 0.0 <= real["mean_auc"] <= 1.0 and all(-1.0 <= v <= 1.0 for v in shifts.values() if v is not None)
    html = (run / "report.html").read_text()
    assert "<h2>Label faithfulness</h2>" in html and html.count("score shift (on − off)") == 1
    assert "real images: shift (with − without)" in html
    assert "cardiomegaly" in html[html.index("<h2>Label faithfulness</h2>") :]


@pytest.mark.slow
def test_report_fits_its_extractor_on_train_and_val_only(run, tmp_path, monkeypatch):
    """The splits fit_feature_extractor receives, and a tripwire on every item of the test split."""
    import medgan_aug.apps.extractor_fit as extractor_module
    from medgan_aug.data.medmnist import MedMNISTDataset

    seen, fitting = [], [False]
    real_fit, real_getitem = extractor_module.fit_feature_extractor, MedMNISTDataset.__getitem__

    def spy(dataset, validation, *args, **kwargs):
        seen.append((dataset.split, validation.split))
        fitting[0] = True
        try:
            return real_fit(dataset, validation, *args, **kwargs)
        finally:
            fitting[0] = False

    def tripwire(self, index):
        if fitting[0] and self.split == "test":
            raise AssertionError("the test split was read while fitting the extractor")
        return real_getitem(self, index)

    monkeypatch.setattr(extractor_module, "fit_feature_extractor", spy)
    monkeypatch.setattr(MedMNISTDataset, "__getitem__", tripwire)
    m = write_report(
        run, extractor=tmp_path / "x.pt", num_samples=50, extractor_iterations=10, repeats=1, progress=False
    )
    assert seen == [("train", "val")] and m["extractor"]["fitted_now"] is True


@pytest.mark.slow
def test_second_report_reuses_the_extractor_and_repeats_the_numbers(run, report):
    again = write_report(run, num_samples=200, extractor_iterations=20, repeats=2, progress=False)
    assert again["extractor"]["fitted_now"] is False
    assert again["extractor"]["weights_sha256"] == report["extractor"]["weights_sha256"]
    assert again["distances"] == report["distances"]
    assert again["memorization"] == report["memorization"]


def test_progression_tiles_are_the_trainer_samples(run):
    last = sorted((run / "samples").glob("iter_*.png"))[-1]
    tiles = read_sample_tiles(last, SIZE, N_SAMPLES)
    assert tiles.shape == (N_SAMPLES, SIZE, SIZE) and tiles.dtype == np.uint8
    # re-tiling the tiles the way the trainer does gives its grid back
    rebuilt = np.asarray(grid_image(tiles[:, None] / 255.0, 4, 1, 1, background=0))
    with Image.open(last) as im:
        original = np.asarray(im.convert("L"))
    np.testing.assert_array_equal(rebuilt, original)
    with pytest.raises(ValueError, match="not a grid of 27px tiles"):
        read_sample_tiles(last, 27, 4)


def test_losses_and_record_are_read_and_checked(run, tmp_path):
    losses = read_losses(run / "losses.csv")
    assert losses["iteration"].tolist() == list(range(1, 31)) and np.isfinite(losses["loss_g"]).all()
    record = load_run_record(run)
    assert record["config"]["base_channels"] == 8
    bad = tmp_path / "losses.csv"
    bad.write_text("iteration,loss_d\n1,x\n")
    with pytest.raises(ValueError, match="non-numeric"):
        read_losses(bad)


def test_unfinished_or_foreign_runs_are_clear_errors(run, tmp_path, capsys, pneumonia_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(run / "config.json", unfinished / "config.json")
    with pytest.raises(FileNotFoundError, match="generator.pt not found: the run has not finished"):
        load_run_record(unfinished)
    assert cli_main(["report", "--run", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err
    # a relative data path that resolves nowhere (nor does the file the trainer read) asks for --real
    record = load_run_record(run)
    record["config"]["path"] = "elsewhere/x.npz"
    record["data"]["source"] = str(tmp_path / "moved_away.npz")
    with pytest.raises(FileNotFoundError, match="pass it with --real"):
        resolve_real_file(record, run, None)
    # the wrong data file for this run is refused (label layout differs), never silently compared
    code = cli_main(["report", "--run", str(run), "--real", str(pneumonia_path), "--no-progress"])
    assert code == 1 and "pneumoniamnist_union.npz" in capsys.readouterr().err
    with pytest.raises(ValueError, match="num_samples"):
        write_report(run, num_samples=5)


@pytest.mark.slow
def test_unconditional_run_has_no_per_finding_rows(chest28_path, tmp_path, run, report):
    out = train_gan(
        GANConfig(
            path=str(chest28_path),
            conditional=False,
            iterations=10,
            batch_size=32,
            base_channels=8,
            latent_dim=16,
            sample_every=5,
            checkpoint_every=10,
            n_samples=N_SAMPLES,
            standing_stats_batches=2,
            seed=1,
            out=str(tmp_path / "uncond"),
            progress=False,
        )
    )
    m = write_report(out, extractor=report["extractor"]["file"], num_samples=100, repeats=1, progress=False)
    assert m["conditional_fidelity"] is None and m["extractor"]["fitted_now"] is False
    assert "per_finding" not in m["files"] and not (out / "per_finding.png").exists()
    for name in m["files"].values():
        assert _size(out / name)[0][0] > 0
    assert "One row per finding" in (out / "report.html").read_text()  # section says "not available"


@pytest.mark.slow
def test_binary_flag_conditional_run_reports_its_positive_class(pneumonia_path, tmp_path):
    """PneumoniaMNIST: one label, two class names; the report must take the positive class as the row."""
    out = train_gan(
        GANConfig(
            path=str(pneumonia_path),
            flag="pneumoniamnist",
            fraction=0.02,
            conditional=True,
            iterations=10,
            batch_size=32,
            base_channels=8,
            latent_dim=16,
            sample_every=5,
            checkpoint_every=10,
            n_samples=N_SAMPLES,
            standing_stats_batches=2,
            seed=0,
            out=str(tmp_path / "pneu"),
            progress=False,
        )
    )
    m = write_report(out, num_samples=100, repeats=1, extractor_iterations=10, progress=False)
    assert m["files"]["per_finding"] == "per_finding.png" and (out / "per_finding.png").is_file()
    assert 0.0 <= m["conditional_fidelity"]["auc"] <= 1.0


@pytest.mark.slow
def test_report_reads_back_a_run_trained_from_the_packaged_sample(tmp_path, report, capsys):
    """`train --sample nih1000` records no path: report must open the sample, not look for the official file."""
    out = tmp_path / "sample_run"
    argv = "train --sample nih1000 --iterations 4 --batch-size 16 --fraction 0.1 --base-channels 8 --latent-dim 16"
    argv += f" --n-samples 4 --standing-stats-batches 1 --threads 1 --no-progress --out {out}"
    assert cli_main(argv.split()) == 0
    record = load_run_record(out)
    assert record["config"]["path"] is None and record["config"]["sample"] == "nih1000"
    assert run_data_source(record, out) == {"flag": "chestmnist", "size": 28, "sample": "nih1000"}
    assert resolve_real_file(record, out, None) == sample_path("nih1000")
    capsys.readouterr()
    extractor = report["extractor"]["file"]
    code = cli_main(["report", "--run", str(out), "--num", "20", "--repeats", "1", "--extractor", extractor])
    assert code == 0, capsys.readouterr().err
    m = json.loads((out / "metrics.json").read_text())
    assert m["data"]["real_file"] == str(sample_path("nih1000")) and m["data"]["n_gan_train"] == 69


def test_run_data_source_follows_every_recorded_source(run, tmp_path):
    """A relative path is looked for beside the run, then as the file the trainer read; an official-file run
    keeps its root; --real wins over all of them and a folder given as --real is named as a folder."""
    record = load_run_record(run)
    cfg = record["config"]
    copy = run.parent / "moved.npz"
    shutil.copy(record["data"]["source"], copy)
    relative = {**record, "config": {**cfg, "path": "moved.npz"}}
    assert run_data_source(relative, run)["path"] == run.parent / "moved.npz"
    gone = {**record, "config": {**cfg, "path": "gone/x.npz"}}
    assert run_data_source(gone, run)["path"] == Path(record["data"]["source"])  # the file the trainer read
    official = {**record, "config": {**cfg, "path": None, "root": str(tmp_path), "download": False}}
    assert run_data_source(official, run) == {
        "flag": "chestmnist",
        "size": 28,
        "root": str(tmp_path),
        "download": False,
    }
    assert run_data_source(official, run, real=copy)["path"] == copy
    with pytest.raises(FileNotFoundError, match="is a folder, not a file"):
        run_data_source(record, run, real=tmp_path)
